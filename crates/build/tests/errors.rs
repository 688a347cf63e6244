//! Bad input: each a clear error with the Dockerfile's line, and no image tagged.

mod common;

use berth_build::context::ContextError;
use berth_build::stage_graph::StageGraphError;
use berth_build::step::StepError;
use berth_build::{BuildError, DockerfileSource, ParseError};
use common::{Fixture, tag};

fn build_inline(f: &Fixture, dockerfile: &str, files: &[(&str, &str)]) -> BuildError {
    let ctx = f.context("ctx", files);
    let mut req = f.request(&ctx);
    req.dockerfile = DockerfileSource::Inline(dockerfile.to_string());
    req.tags.push(tag("broken:latest"));
    let err = f.build(req).unwrap_err();
    assert!(
        f.resolve("broken:latest").is_none(),
        "a failed build tags nothing"
    );
    err
}

#[test]
fn unknown_instruction_names_line_and_column() {
    let f = Fixture::new();
    let e = build_inline(&f, "FROM busybox\n  RUNN echo\n", &[]);
    assert!(
        matches!(&e, BuildError::Parse(d) if d.location.line == 2 && d.location.column == 3
        && d.error == ParseError::UnknownInstruction { name: "RUNN".into() }),
        "{e}"
    );
    assert_eq!(e.to_string(), "<inline>:2:3: unknown instruction \"RUNN\"");
}

#[test]
fn copy_source_missing_or_escaping_the_context() {
    let f = Fixture::new();
    let e = build_inline(
        &f,
        "FROM busybox\nCOPY present /\nCOPY missing.txt /app/\n",
        &[("present", "x")],
    );
    let BuildError::Step(failed) = &e else {
        panic!("unexpected {e}")
    };
    assert_eq!(failed.location.line, 3);
    assert!(
        matches!(&failed.source, StepError::Context(ContextError::NotFound { source_path }) if source_path == "missing.txt"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains(":3: step 2/2 (COPY missing.txt /app/)"),
        "{e}"
    );
    let e = build_inline(&f, "FROM busybox\nCOPY ../../etc/passwd /\n", &[]);
    assert!(
        matches!(&e, BuildError::Step(f) if f.location.line == 2
            && matches!(f.source, StepError::Context(ContextError::Escapes { .. }))),
        "{e}"
    );
}

#[test]
fn failing_run_shows_its_output_and_names_the_step() {
    let f = Fixture::new();
    let e = build_inline(
        &f,
        "FROM busybox AS app\nRUN echo preparing\nRUN echo 'something broke' >&2; exit 3\nRUN echo never\n",
        &[],
    );
    let BuildError::Step(failed) = &e else {
        panic!("unexpected {e}")
    };
    assert_eq!(failed.stage, "app");
    assert_eq!(failed.step, "2/3");
    assert_eq!(failed.location.line, 3);
    assert!(
        matches!(&failed.source, StepError::RunFailed { code: 3, output } if output == "something broke"),
        "{e}"
    );
    assert!(
        e.to_string().contains(
            "<inline>:3: step 2/3 (RUN echo 'something broke' >&2; exit 3) of stage app failed"
        ),
        "{e}"
    );
    assert!(f.output().contains(&"something broke".to_string()));
    assert!(!f.steps().iter().any(|(t, _)| t.contains("never")));
}

#[test]
fn duplicate_stage_name_and_stage_cycle() {
    let f = Fixture::new();
    let e = build_inline(&f, "FROM busybox AS a\nFROM busybox AS a\n", &[]);
    assert!(
        matches!(&e, BuildError::Parse(d) if d.location.line == 2
        && d.error == ParseError::DuplicateStageName { name: "a".into(), first_line: 1 }),
        "{e}"
    );
    let e = build_inline(
        &f,
        "FROM busybox AS a\nCOPY --from=b /x /x\nFROM a AS b\n",
        &[],
    );
    assert!(
        matches!(&e, BuildError::Graph { source: StageGraphError::Cycle { location, .. }, .. } if location.line == 3),
        "{e}"
    );
    assert!(
        e.to_string().contains("stages form a cycle: a -> b -> a"),
        "{e}"
    );
}

#[test]
fn missing_base_image_and_bad_target() {
    let f = Fixture::new();
    let e = build_inline(&f, "FROM localhost:1/nothing-here:1\n", &[]);
    assert!(
        matches!(&e, BuildError::Step(f) if f.location.line == 1
            && matches!(f.source, StepError::Pull { .. })),
        "{e}"
    );
    let ctx = f.context("t", &[("Dockerfile", "FROM busybox AS only\n")]);
    let mut req = f.request(&ctx);
    req.target = Some("other".into());
    assert!(matches!(
        f.build(req),
        Err(BuildError::Graph {
            source: StageGraphError::UnknownTarget { .. },
            ..
        })
    ));
}
