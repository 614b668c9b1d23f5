//! Preprocessing split into parts (what each Spark task runs, `workload preprocess --part I/N`)
//! writes exactly the shards of one whole run with `--shards N`.

use std::collections::BTreeMap;
use std::path::Path;

use workload::dataset::{generate, GenOptions};
use workload::preprocess::{run, run_part, PreprocessOptions};

fn shards(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tfrec"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn parts_together_equal_one_whole_run() {
    let root = std::env::temp_dir().join(format!("cp-parts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let data = root.join("data");
    generate(&GenOptions {
        out: data.clone(),
        images: 23,
        seed: 7,
        threads: 2,
        quality: 85,
    })
    .unwrap();
    let opts = |out: &Path| PreprocessOptions {
        input: data.display().to_string(),
        output: out.display().to_string(),
        shards: 4,
        threads: 2,
        seed: 3,
        ..Default::default()
    };
    let whole = root.join("whole");
    let s = run(&opts(&whole)).unwrap();
    assert_eq!(s.images_written, 23);

    let split = root.join("split");
    // Out of order, as Spark may schedule them.
    let mut written = 0;
    for part in [2, 0, 3, 1] {
        let s = run_part(&opts(&split), part, 4).unwrap();
        assert_eq!(s.shards.len(), 1);
        assert!(
            s.shards[0].name.starts_with(&format!("flowers{part:02}-")),
            "{:?}",
            s.shards
        );
        written += s.images_written;
    }
    assert_eq!(written, 23);
    let (a, b) = (shards(&whole), shards(&split));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(a == b, "the split run's shards differ from the whole run's");

    // More parts than images: the extra parts write nothing; a part past the end is refused.
    let few = root.join("few");
    let mut o = opts(&few);
    o.limit = Some(2);
    assert_eq!(run_part(&o, 2, 3).unwrap().images_written, 0);
    assert!(run_part(&o, 3, 3).is_err());
    let _ = std::fs::remove_dir_all(&root);
}
