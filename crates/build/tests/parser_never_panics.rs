//! The parser and the substitution engine return errors, never panic, on any input.

use berth_build::Dockerfile;
use berth_build::dockerignore::DockerIgnore;
use berth_build::substitute::{Vars, expand_word, expand_words};
use proptest::prelude::*;

/// Fragments that exercise the grammar's corners, glued together at random.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM ".to_string()),
        Just("RUN ".to_string()),
        Just("COPY ".to_string()),
        Just("ONBUILD ".to_string()),
        Just("HEALTHCHECK ".to_string()),
        Just("ENV ".to_string()),
        Just("ARG ".to_string()),
        Just("SHELL ".to_string()),
        Just("--mount=type=cache,target=/x ".to_string()),
        Just("--from=".to_string()),
        Just("<<EOF".to_string()),
        Just("<<-'E'".to_string()),
        Just("\nEOF\n".to_string()),
        Just("\\\n".to_string()),
        Just("`\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("\n".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("[\"a\", \"b\"]".to_string()),
        Just("${A:-${B".to_string()),
        Just("=".to_string()),
        Just(" AS ".to_string()),
        Just("é".to_string()),
        "[ -~]{0,6}".prop_map(|s| s),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_bytes(text in "\\PC{0,200}") {
        let _ = Dockerfile::parse(&text, "Dockerfile");
    }

    #[test]
    fn parse_never_panics_on_grammar_soup(parts in prop::collection::vec(fragment(), 0..40)) {
        let text = parts.concat();
        match Dockerfile::parse(&text, "Dockerfile") {
            Ok(df) => prop_assert!(!df.stages.is_empty()),
            Err(d) => {
                prop_assert!(d.location.line >= 1);
                prop_assert!(d.location.column >= 1);
                prop_assert!(d.location.line <= text.split('\n').count().max(1));
            }
        }
    }

    #[test]
    fn substitution_never_panics(text in "[ -~é]{0,40}") {
        let vars = Vars(vec![("A".into(), "x y".into())]);
        let _ = expand_word(&text, '\\', &vars);
        let _ = expand_words(&text, '`', &vars);
    }

    #[test]
    fn dockerignore_never_panics(text in "[ -~\n]{0,60}", path in "[a-z/.*]{0,20}") {
        if let Ok(ig) = DockerIgnore::parse(&text) {
            let _ = ig.is_excluded(&path);
        }
    }
}
