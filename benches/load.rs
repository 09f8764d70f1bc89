//! Loading-pipeline benches: template render (cold, compiled-cached, fully cached), parse +
//! validate of 100- and 2,000-line files, and suites of 1 to 1,000 files, parallel vs sequential.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clnrm::suite::{LoadOptions, Loader};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// A typical template: 10 vars, a loop of 10 steps, the macro library.
fn template() -> String {
    let mut t = String::from("{% import \"_macros.toml.tera\" as m %}\n[vars]\n");
    for i in 0..10 {
        t.push_str(&format!("v{i} = \"value-{i}\"\n"));
    }
    t.push_str(
        "\n{{ m::meta(name=\"typical\", description=v0) }}\n{{ m::service(id=\"app\", image=\"clnrm-test/busybox:latest\") }}\n{{ m::scenario(name=\"loop\") }}\n{% for i in range(end=10) %}\n{{ m::step(name=\"step-\" ~ i, cmd=[\"echo\", vars.v1, fake_word(seed=i)], stdout_contains=v1) }}\n{% endfor %}\n",
    );
    t
}

/// A current-dialect file of about `lines` lines.
fn plain(name: &str, lines: usize) -> String {
    let mut t = format!(
        "[meta]\nname = \"{name}\"\ntags = [\"bench\"]\n\n[service.app]\nimage = \"clnrm-test/busybox:latest\"\n\n[[scenario]]\nname = \"s\"\n\n"
    );
    let mut i = 0;
    while t.lines().count() + 5 <= lines {
        t.push_str(&format!(
            "[[scenario.steps]]\nname = \"step-{i}\"\ncmd = [\"echo\", \"{i}\"]\nstdout_regex = \"^{i}$\"\n\n"
        ));
        i += 1;
    }
    t
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write bench input");
    p
}

fn loader() -> Loader {
    Loader::new(LoadOptions::default())
}

fn render(c: &mut Criterion) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = write(d.path(), "typical.clnrm.toml.tera", &template());
    let mut g = c.benchmark_group("render");
    g.bench_function("cold", |b| {
        b.iter(|| black_box(loader().render(&p).expect("renders")))
    });
    let warm = loader();
    warm.load(&p).expect("valid");
    g.bench_function("compiled_cached", |b| {
        b.iter(|| black_box(warm.render(&p).expect("renders")))
    });
    g.bench_function("load_cold", |b| {
        b.iter(|| black_box(loader().load(&p).expect("valid")))
    });
    g.bench_function("load_cached", |b| {
        b.iter(|| black_box(warm.load(&p).expect("valid")))
    });
    g.finish();
}

fn parse_validate(c: &mut Criterion) {
    let d = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("parse_validate");
    for lines in [100, 2000] {
        let p = write(
            d.path(),
            &format!("f{lines}.clnrm.toml"),
            &plain("f", lines),
        );
        g.bench_with_input(BenchmarkId::new("cold", lines), &p, |b, p| {
            b.iter(|| black_box(loader().load(p).expect("valid")))
        });
        let warm = loader();
        warm.load(&p).expect("valid");
        g.bench_with_input(BenchmarkId::new("cached", lines), &p, |b, p| {
            b.iter(|| black_box(warm.load(p).expect("valid")))
        });
        g.bench_with_input(BenchmarkId::new("cached_shared", lines), &p, |b, p| {
            b.iter(|| black_box(warm.load_shared(p)))
        });
    }
    g.finish();
}

fn suites(c: &mut Criterion) {
    let d = tempfile::tempdir().expect("tempdir");
    let all: Vec<PathBuf> = (0..1000)
        .map(|i| {
            write(
                d.path(),
                &format!("t{i:04}.clnrm.toml"),
                &plain(&format!("t{i}"), 40),
            )
        })
        .collect();
    let mut g = c.benchmark_group("load_suite");
    g.sample_size(10);
    for n in [1, 10, 100, 1000] {
        let paths = &all[..n];
        g.bench_with_input(BenchmarkId::new("parallel", n), paths, |b, p| {
            b.iter(|| {
                let s = loader().load_suite(p);
                assert_eq!(s.tests.len(), p.len());
                black_box(s)
            })
        });
        g.bench_with_input(BenchmarkId::new("sequential", n), paths, |b, p| {
            b.iter(|| black_box(loader().load_suite_sequential(p)))
        });
        let warm = loader();
        warm.load_suite(paths);
        g.bench_with_input(BenchmarkId::new("parallel_cached", n), paths, |b, p| {
            b.iter(|| black_box(warm.load_suite(p)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = render, parse_validate, suites
}
criterion_main!(benches);
