//! Runs every fuzz target over its seeds on stable (`make fuzz-check`), and
//! checks the seeds still reach the code past the parsers: a seed that
//! rrun has come to refuse would quietly cost the fuzzers that code.
//!
//! FUZZ_REPLAY=1 also replays `corpus/<target>/` and `artifacts/<target>/`
//! (e.g. a crash found under nightly, reproduced with a plain debugger).

use std::path::{Path, PathBuf};

use rrun_fuzz::init::policy;
use rrun_fuzz::security::seccomp;
use rrun_fuzz::{spec, targets};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target)
}

#[test]
fn every_target_runs_its_seeds() {
    let replay = std::env::var_os("FUZZ_REPLAY").is_some();
    for (name, run) in targets::ALL {
        let seeds = inputs(&dir("seeds", name));
        assert!(!seeds.is_empty(), "no seeds for {name}");
        let mut all = seeds;
        if replay {
            all.extend(inputs(&dir("corpus", name)));
            all.extend(inputs(&dir("artifacts", name)));
        }
        for f in all {
            let data = std::fs::read(&f).unwrap();
            eprintln!("{name}: {}", f.display());
            run(&data);
        }
    }
}

#[test]
fn config_seeds_are_valid() {
    for f in inputs(&dir("seeds", "config")) {
        let data = std::fs::read(&f).unwrap();
        let s = spec::parse_config_bytes(&f, &data).unwrap();
        spec::validate(&s).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if let Some(sc) = s.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            seccomp::compile(sc).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
    }
}

#[test]
fn seccomp_seeds_compile() {
    for f in inputs(&dir("seeds", "seccomp")) {
        let data = std::fs::read(&f).unwrap();
        let p = serde_json::from_slice(&data).unwrap();
        seccomp::compile(&p).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn annotation_seeds_parse() {
    for f in inputs(&dir("seeds", "annotations")) {
        let ann = targets::annotation_map(&std::fs::read(&f).unwrap());
        assert!(policy::enabled(&ann), "{}", f.display());
        policy::parse(&ann).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}
