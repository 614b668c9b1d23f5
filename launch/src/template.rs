//! Command templates: `{name}` placeholders filled from a configuration, `{{` and `}}` for
//! literal braces.

/// Placeholder names in a template (`{name}`; `{{`/`}}` escape braces).
pub fn placeholders(template: &str) -> Result<Vec<String>, String> {
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
) -> Result<String, String> {
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
                    return Err(format!(
                        "`{{` at byte {i} is never closed (write `{{{{` for a brace)"
                    ));
                };
                let name = &rest[..end];
                let value =
                    lookup(name).ok_or_else(|| format!("unknown placeholder {{{name}}}"))?;
                out.push_str(&value);
                for _ in 0..=end {
                    chars.next();
                }
            }
            '}' => {
                return Err(format!(
                    "`}}` at byte {i} has no `{{` (write `}}}}` for a brace)"
                ))
            }
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
        assert!(render_with("{z}", |_| None).is_err());
        assert!(render_with("{open", |_| Some(String::new())).is_err());
        assert_eq!(placeholders("{a}-{b}").unwrap(), ["a", "b"]);
    }
}
