//! Command templates: `{name}` placeholders filled from a configuration, `{{` and `}}` for
//! literal braces.

/// What is wrong with a template, or with filling it in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` with no `}` after it.
    #[error("`{{` at byte {at} is never closed (write `{{{{` for a brace)")]
    Unclosed { at: usize },
    /// A `}` with no `{` before it.
    #[error("`}}` at byte {at} has no `{{` (write `}}}}` for a brace)")]
    Unopened { at: usize },
    /// A placeholder the lookup has no value for.
    #[error("unknown placeholder {{{name}}}")]
    Unknown { name: String },
    /// A placeholder not among the names a configuration has (checking a template).
    #[error("unknown placeholder {{{name}}} (known: {})", .known.join(", "))]
    NotKnown { name: String, known: Vec<String> },
}

/// Placeholder names in a template (`{name}`; `{{`/`}}` escape braces).
pub fn placeholders(template: &str) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    render_with(template, |name| {
        out.push(name.to_string());
        Some(String::new())
    })?;
    Ok(out)
}

/// Replaces every `{name}` in `template` with `lookup(name)`; an unknown name is an error.
pub fn render_with(
    template: &str,
    mut lookup: impl FnMut(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let rest = &template[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(TemplateError::Unclosed { at: i });
                };
                let name = &rest[..end];
                let value = lookup(name).ok_or_else(|| TemplateError::Unknown {
                    name: name.to_string(),
                })?;
                out.push_str(&value);
                for _ in 0..=end {
                    chars.next();
                }
            }
            '}' => return Err(TemplateError::Unopened { at: i }),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_escape() {
        let r = render_with("a {x} {{y}} }}", |n| (n == "x").then(|| "1".to_string())).unwrap();
        assert_eq!(r, "a 1 {y} }");
        let unknown = render_with("{z}", |_| None).unwrap_err();
        assert_eq!(unknown, TemplateError::Unknown { name: "z".into() });
        assert_eq!(unknown.to_string(), "unknown placeholder {z}");
        let open = render_with("a {open", |_| Some(String::new())).unwrap_err();
        assert_eq!(open, TemplateError::Unclosed { at: 2 });
        assert_eq!(
            open.to_string(),
            "`{` at byte 2 is never closed (write `{{` for a brace)"
        );
        let close = render_with("a }", |_| Some(String::new())).unwrap_err();
        assert_eq!(
            close.to_string(),
            "`}` at byte 2 has no `{` (write `}}` for a brace)"
        );
        assert_eq!(placeholders("{a}-{b}").unwrap(), ["a", "b"]);
    }
}
