//! fmt --check and lint over 1,000 generated test files (targets: fmt < 500 ms, lint < 1 s).
//!
//! `cargo bench --bench fmt_lint -- --warm-up-time 1 --measurement-time 5`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use clnrm::fmt::{fmt_paths, format_source, unified_diff, SourceKind};
use clnrm::lint::lint;
use clnrm::suite::{
    Command, Determinism, Dialect, Expect, Limits, PerfSpec, ScenarioSpec, ServiceSpec, StepSpec,
    TestSpec,
};
use criterion::{criterion_group, criterion_main, Criterion};

const FILES: usize = 1000;

/// One file: 2 services, 3 scenarios of 4 steps (about 70 lines). Odd files are written with
/// messy spacing and shuffled tables so fmt has real work; even files are already canonical.
fn file(i: usize) -> (String, TestSpec) {
    let messy = i % 2 == 1;
    let eq = if messy { "=" } else { " = " };
    let mut services = BTreeMap::new();
    let mut text = String::new();
    let meta = format!("[meta]\nname{eq}\"test-{i}\"\ndescription{eq}\"generated file {i}\"\ntags{eq}[\"gen\", \"bench\"]\n");
    let vars = format!("[vars]\nimage{eq}\"busybox:1.36\"\nunused_{i}{eq}\"x\"\n");
    let mut svc_text = String::new();
    for (n, id) in ["app", "db"].iter().enumerate() {
        let image = if n == 0 {
            "busybox:1.36"
        } else {
            "postgres:latest"
        };
        svc_text.push_str(&format!(
            "\n[service.{id}]\nimage{eq}\"{image}\"\ncmd{eq}[\"sleep\", \"infinity\"]\nenv{eq}{{ MODE = \"test\", API_TOKEN = \"abc123def456ghi789\" }}\n"
        ));
        let mut env = BTreeMap::new();
        env.insert("MODE".to_string(), "test".to_string());
        env.insert("API_TOKEN".to_string(), "abc123def456ghi789".to_string());
        services.insert(
            id.to_string(),
            ServiceSpec {
                depends_on: Vec::new(),
                id: id.to_string(),
                image: Some(image.into()),
                cmd: Some(vec!["sleep".into(), "infinity".into()]),
                env,
                workdir: None,
                limits: Limits::default(),
                ready: None,
                reuse: false,
                reuse_suite: false,
                mounts: vec![],
                network_access: false,
                ports: vec![],
                line: 10 + 5 * n as u32,
            },
        );
    }
    let mut scen_text = String::new();
    let mut scenarios = Vec::new();
    for s in 0..3 {
        scen_text.push_str(&format!(
            "\n# scenario {s}\n[[scenario]]\nname{eq}\"s{s}\"\nservice{eq}\"app\"\n"
        ));
        let mut steps = Vec::new();
        for k in 0..4 {
            let sh = format!("echo step {k} && test 1 == 1 && X=1 printenv X");
            scen_text.push_str(&format!(
                "\n[[scenario.steps]]\nname{eq}\"step{k}\"\nsh{eq}\"{sh}\"\nstdout_contains{eq}[\"step {k}\"]\n"
            ));
            let mut expect = Expect::default();
            if k != 3 {
                expect.stdout.contains = vec![format!("step {k}")];
            }
            steps.push(StepSpec {
                description: None,
                retries: 0,
                name: format!("step{k}"),
                service: "app".into(),
                run: Command::Shell(sh),
                env: BTreeMap::new(),
                workdir: None,
                timeout: None,
                expect,
                continue_on_failure: false,
                line: 30 + 20 * s + 5 * k,
            });
        }
        scenarios.push(ScenarioSpec {
            skip: None,
            name: format!("s{s}"),
            description: None,
            service: Some("app".into()),
            timeout: None,
            retries: None,
            tags: vec![],
            steps,
            line: 28 + 20 * s,
            expect: Default::default(),
        });
    }
    let perf = format!("[perf]\nmax_ms{eq}500\n");
    let parts = if messy {
        vec![perf, scen_text, svc_text, vars, meta]
    } else {
        vec![meta, vars, svc_text, scen_text, perf]
    };
    text.push_str(&parts.join("\n"));
    if !messy {
        // Even files start out canonical, as most files in a formatted suite are.
        text = format_source(&text, SourceKind::Toml).expect("generated file formats");
    }
    let spec = TestSpec {
        skip: None,
        report: Default::default(),
        path: format!("gen/test-{i}.clnrm.toml").into(),
        name: format!("test-{i}"),
        description: Some(format!("generated file {i}")),
        tags: vec!["gen".into(), "bench".into()],
        timeout: None,
        retries: None,
        services,
        scenarios,
        perf: PerfSpec::default(),
        determinism: Determinism::default(),
        expect: Default::default(),
        dialect: Dialect::Current,
        content_hash: String::new(),
    };
    (text, spec)
}

fn bench(c: &mut Criterion) {
    let files: Vec<(String, TestSpec)> = (0..FILES).map(file).collect();
    let mut g = c.benchmark_group("fmt_lint_1000_files");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.warm_up_time(Duration::from_secs(1));

    g.bench_function("fmt_check_in_memory_1_thread", |b| {
        b.iter(|| {
            let mut changed = 0;
            for (i, (text, _)) in files.iter().enumerate() {
                let out = format_source(text, SourceKind::Toml).expect("generated files format");
                if out != *text {
                    changed += 1;
                    black_box(unified_diff(&format!("test-{i}.clnrm.toml"), text, &out));
                }
            }
            assert_eq!(changed, FILES / 2);
        })
    });

    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (text, _)) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("test-{i}.clnrm.toml")), text).expect("write");
    }
    let root = vec![dir.path().to_path_buf()];
    g.bench_function("fmt_paths_check_on_disk", |b| {
        b.iter(|| {
            let out = fmt_paths(&root, true);
            assert_eq!(out.files.len(), FILES);
            black_box(out.exit_code())
        })
    });

    g.bench_function("lint_1_thread", |b| {
        b.iter(|| {
            let mut n = 0;
            for (text, spec) in &files {
                n += lint(spec, text, Some(text)).len();
            }
            // Per file: image-latest, 2x secret-in-env, 3x scenario-no-timeout, 3x
            // step-no-output-expectation, unused-service (db), 2x unused-var (no tags at all).
            assert_eq!(n, FILES * 12);
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
