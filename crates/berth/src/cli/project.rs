//! Options that select and load the stack (`-f`, `-p`, `--profile`, `--env-file`,
//! `--project-directory`), shared by every command that works on a project. They go
//! before the command name, as with `docker compose -f x.yaml up`. `COMPOSE_FILE`,
//! `COMPOSE_PROJECT_NAME` and `COMPOSE_PROFILES` (from the environment or `.env`) apply
//! when the matching option is absent.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use berth_compose::{LoadOptions, Project};

/// Stack selection options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProjectArgs {
    /// Stack file (repeatable, merged in order; `-` reads stdin). Default: compose.yaml
    /// and compose.override.yaml found in this directory or a parent, or COMPOSE_FILE.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (default: COMPOSE_PROJECT_NAME, the file's `name:`, or the directory name).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Activate a profile (repeatable; default: COMPOSE_PROFILES).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Env file to read instead of the project directory's `.env` (repeatable).
    #[arg(long = "env-file", value_name = "PATH")]
    pub env_files: Vec<PathBuf>,
    /// Project directory (default: the first stack file's directory).
    #[arg(long = "project-directory", value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
}

impl ProjectArgs {
    /// The loader options for these arguments, the current directory and environment.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        let working_dir =
            std::env::current_dir().context("cannot determine the current directory")?;
        let stdin = if self.files.iter().any(|f| f.as_os_str() == "-") {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the stack file from stdin")?;
            Some(s)
        } else {
            None
        };
        Ok(LoadOptions {
            files: self.files.clone(),
            stdin,
            working_dir,
            project_directory: self.project_directory.clone(),
            project_name: self.project_name.clone(),
            env_files: self.env_files.clone(),
            environment: std::env::vars().collect(),
            profiles: self.profiles.clone(),
        })
    }

    /// Loads the project, printing warnings (unset variables, fields berth does not apply
    /// yet) to stderr, also when the load fails (before the errors, as Compose does). A
    /// stack-file error comes back as [`berth_compose::Diagnostics`] inside the
    /// `anyhow::Error`, so the caller can print it with [`crate::report`] and exit with
    /// [`super::exit::INVALID_INPUT`].
    pub fn load(&self) -> anyhow::Result<Project> {
        let opts = self.load_options()?;
        let (result, warnings) = berth_compose::load_reporting(&opts);
        for w in &warnings {
            crate::report::print_warning(w);
        }
        let project = result?;
        for (field, services) in berth_compose::support::not_applied(&project) {
            eprintln!(
                "warning: `{field}` is parsed but not applied by berth yet (service{} {})",
                if services.len() == 1 { "" } else { "s" },
                services.join(", ")
            );
        }
        Ok(project)
    }
}
