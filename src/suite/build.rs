//! Constructors for the test-file model with every field at its default, for tests, benches
//! and code that builds a test programmatically: a new field is added here once, not in every
//! struct literal.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::model::{
    Command, Determinism, Dialect, Expect, Limits, PerfSpec, ReportSpec, ScenarioSpec, ServiceSpec,
    StepSpec, TestSpec,
};

impl TestSpec {
    /// A test named `name` in `name.clnrm.toml`, with no services and no scenarios.
    pub fn named(name: &str) -> TestSpec {
        TestSpec {
            path: PathBuf::from(format!("{name}.clnrm.toml")),
            name: name.to_string(),
            description: None,
            tags: Vec::new(),
            timeout: None,
            retries: None,
            services: BTreeMap::new(),
            scenarios: Vec::new(),
            perf: PerfSpec::default(),
            determinism: Determinism::default(),
            expect: Default::default(),
            dialect: Dialect::Current,
            content_hash: String::new(),
            skip: None,
            report: ReportSpec::default(),
        }
    }

    pub fn with_service(mut self, service: ServiceSpec) -> TestSpec {
        self.services.insert(service.id.clone(), service);
        self
    }

    pub fn with_scenario(mut self, scenario: ScenarioSpec) -> TestSpec {
        self.scenarios.push(scenario);
        self
    }
}

impl ServiceSpec {
    /// A service without an image (it runs on the local backend) and without a command.
    pub fn named(id: &str) -> ServiceSpec {
        ServiceSpec {
            id: id.to_string(),
            image: None,
            cmd: None,
            env: BTreeMap::new(),
            workdir: None,
            limits: Limits::default(),
            ready: None,
            reuse: false,
            reuse_suite: false,
            mounts: Vec::new(),
            network_access: false,
            ports: Vec::new(),
            line: 1,
            depends_on: Vec::new(),
        }
    }

    pub fn with_image(mut self, image: &str) -> ServiceSpec {
        self.image = Some(image.to_string());
        self
    }
}

impl ScenarioSpec {
    pub fn new(name: &str, steps: Vec<StepSpec>) -> ScenarioSpec {
        ScenarioSpec {
            name: name.to_string(),
            description: None,
            service: None,
            timeout: None,
            retries: None,
            tags: Vec::new(),
            steps,
            expect: Default::default(),
            line: 1,
            skip: None,
        }
    }
}

impl StepSpec {
    /// A step running `sh -c script` in `service`, expecting exit 0.
    pub fn shell(name: &str, service: &str, script: &str) -> StepSpec {
        StepSpec::with_command(name, service, Command::Shell(script.to_string()))
    }

    /// A step running `argv` as given in `service`, expecting exit 0.
    pub fn argv(name: &str, service: &str, argv: &[&str]) -> StepSpec {
        let argv = argv.iter().map(|s| s.to_string()).collect();
        StepSpec::with_command(name, service, Command::Argv(argv))
    }

    fn with_command(name: &str, service: &str, run: Command) -> StepSpec {
        StepSpec {
            name: name.to_string(),
            service: service.to_string(),
            run,
            env: BTreeMap::new(),
            workdir: None,
            timeout: None,
            expect: Expect::default(),
            continue_on_failure: false,
            line: 1,
            description: None,
            retries: 0,
        }
    }
}
