//! Compose stack files to a typed, canonical [`Project`].
//!
//! This crate depends on no other berth crate. [`load`] runs the loader's phases, one
//! module each:
//!
//! 1. [`discover`]: which files, which project directory, which `.env`;
//! 2. [`source`]: each file parsed into a located YAML tree (anchors, merge keys);
//! 3. [`interpolate`]: `${VAR}` and friends in every value, from [`env`];
//! 4. [`include`] and [`extends`]: other files pulled in;
//! 5. [`decode`]: the tree into the typed [`model`] (short syntaxes expanded);
//! 6. [`merge`]: files merged in order (in the model where possible, `merge_model`);
//! 7. [`profiles`], [`canonical`] defaults, [`validate`] cross-references.
//!
//! ```no_run
//! let opts = berth_compose::LoadOptions {
//!     working_dir: std::env::current_dir().unwrap(),
//!     environment: std::env::vars().collect(),
//!     ..Default::default()
//! };
//! match berth_compose::load(&opts) {
//!     Ok(project) => println!("{} services", project.services.len()),
//!     Err(diags) => eprintln!("{diags}"),
//! }
//! ```
#![forbid(unsafe_code)]

pub mod assemble;
pub mod canonical;
pub mod decode;
pub mod diagnostic;
pub mod discover;
pub mod emit;
pub mod env;
mod extends;
pub mod include;
pub mod interpolate;
pub mod merge;
mod merge_model;
pub mod model;
pub mod profiles;
pub mod scalar;
pub mod source;
pub mod support;
pub mod validate;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

pub use diagnostic::{Diagnostic, Diagnostics, FieldPath, Location};
pub use model::{Project, Service};

/// What to load and with which environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Stack files in order (`-` is stdin); empty means discover them.
    pub files: Vec<PathBuf>,
    /// Content of stdin, for `-`.
    pub stdin: Option<String>,
    /// The directory berth runs in (relative paths of the options resolve against it).
    pub working_dir: PathBuf,
    /// Project directory (default: the first file's directory).
    pub project_directory: Option<PathBuf>,
    /// Project name (highest precedence).
    pub project_name: Option<String>,
    /// Env files replacing the default `.env` of the project directory.
    pub env_files: Vec<PathBuf>,
    /// The process environment (wins over env files).
    pub environment: IndexMap<String, String>,
    /// Active profiles (`COMPOSE_PROFILES` is used when empty).
    pub profiles: Vec<String>,
}

/// Loads the stack described by `opts` into a canonical [`Project`].
pub fn load(opts: &LoadOptions) -> Result<Project, Diagnostics> {
    load_with_warnings(opts).map(|(p, _)| p)
}

/// Like [`load`], also returning warnings (unset variables, obsolete `version`).
pub fn load_with_warnings(opts: &LoadOptions) -> Result<(Project, Vec<Diagnostic>), Diagnostics> {
    let (result, warnings) = load_reporting(opts);
    result.map(|p| (p, warnings))
}

/// Like [`load`], also returning the warnings found before the load succeeded or
/// failed (unset variables, obsolete `version`), so they can be shown before the errors,
/// as Compose does.
///
/// ```no_run
/// let opts = berth_compose::LoadOptions::default();
/// let (result, warnings) = berth_compose::load_reporting(&opts);
/// for w in &warnings {
///     eprintln!("{w}");
/// }
/// if let Err(errors) = result {
///     eprintln!("{errors}");
/// }
/// ```
pub fn load_reporting(opts: &LoadOptions) -> (Result<Project, Diagnostics>, Vec<Diagnostic>) {
    let mut warnings = Vec::new();
    let result = load_into(opts, &mut warnings);
    (result, warnings)
}

fn load_into(opts: &LoadOptions, warnings: &mut Vec<Diagnostic>) -> Result<Project, Diagnostics> {
    let working_dir = if opts.working_dir.is_absolute() {
        discover::normalize(&opts.working_dir)
    } else {
        let cwd = std::env::current_dir().map_err(|e| Diagnostic::io(Path::new("."), &e))?;
        discover::absolute(&cwd, &opts.working_dir)
    };
    let process_env = &opts.environment;
    let explicit_dir = opts
        .project_directory
        .as_ref()
        .map(|d| discover::absolute(&working_dir, d));
    let env_files: Vec<PathBuf> = opts
        .env_files
        .iter()
        .map(|f| discover::absolute(&working_dir, f))
        .collect();
    let first_dir = explicit_dir.clone().unwrap_or_else(|| working_dir.clone());
    let mut env = read_env(&env_files, &first_dir, process_env)?;

    let files = discover::files(&opts.files, &working_dir, &env)?;
    let project_dir = explicit_dir.clone().unwrap_or_else(|| match files.first() {
        Some(discover::FileRef::Path(p)) => p
            .parent()
            .map_or_else(|| working_dir.clone(), Path::to_path_buf),
        _ => working_dir.clone(),
    });
    if project_dir != first_dir && env_files.is_empty() {
        env = read_env(&[], &project_dir, process_env)?;
    }

    let mut loader = assemble::Loader::new(process_env, opts.stdin.as_deref());
    let result = finish(opts, &mut loader, &files, env, &project_dir);
    warnings.append(&mut loader.warnings);
    drop_in_background(std::mem::take(&mut loader.trees));
    result
}

/// Frees the located trees (one node per YAML value, kept to point errors at file:line:column)
/// on another thread: freeing them is a tenth of a large load, and nobody waits for it.
fn drop_in_background(trees: Vec<source::Node>) {
    if trees.is_empty() {
        return;
    }
    // If no thread can be started, free them here.
    let _ = std::thread::Builder::new()
        .name("compose-free".into())
        .spawn(move || drop(trees));
}

/// The phases after discovery: load and merge the files, then name, profiles, defaults
/// and validation. Warnings stay in `loader`.
fn finish(
    opts: &LoadOptions,
    loader: &mut assemble::Loader<'_>,
    files: &[discover::FileRef],
    env: IndexMap<String, String>,
    project_dir: &Path,
) -> Result<Project, Diagnostics> {
    let scope = assemble::Scope {
        env,
        base_dir: project_dir.to_path_buf(),
    };
    let env = &scope.env;
    let mut project = loader.load_project(files, &scope)?;
    project.working_dir = project_dir.to_path_buf();

    project.name = project_name(opts, env, &project, project_dir).map_err(|e| {
        let path = FieldPath::keys(&["name"]);
        Diagnostic::new(e).at(loader.locate(&path)).with_path(path)
    })?;

    let active: Vec<String> = if opts.profiles.is_empty() {
        env.get("COMPOSE_PROFILES")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        opts.profiles.clone()
    };
    profiles::apply(&mut project, &active);

    let locate = |p: &FieldPath| loader.locate(p);
    let mut errors = Vec::new();
    for (name, svc) in project
        .services
        .iter_mut()
        .chain(project.disabled_services.iter_mut())
    {
        if let Err(e) = canonical::service_defaults(name, svc, env, &locate) {
            errors.push(e);
        }
    }
    errors.extend(validate::check(&project, &locate));
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    canonical::project_defaults(&mut project);
    Ok(project)
}

fn read_env(
    env_files: &[PathBuf],
    dir: &Path,
    process_env: &IndexMap<String, String>,
) -> Result<IndexMap<String, String>, Diagnostic> {
    let mut env = IndexMap::new();
    if env_files.is_empty() {
        let dotenv = dir.join(".env");
        if dotenv.is_file() {
            env.extend(env::read(&dotenv, process_env)?);
        }
    } else {
        for f in env_files {
            env.extend(env::read(f, process_env)?);
        }
    }
    env.extend(process_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(env)
}

fn project_name(
    opts: &LoadOptions,
    env: &IndexMap<String, String>,
    project: &Project,
    project_dir: &Path,
) -> Result<String, discover::DiscoverError> {
    let explicit = opts
        .project_name
        .clone()
        .or_else(|| {
            env.get("COMPOSE_PROJECT_NAME")
                .filter(|s| !s.is_empty())
                .cloned()
        })
        .or_else(|| Some(project.name.clone()).filter(|s| !s.is_empty()));
    match explicit {
        Some(n) => discover::check_project_name(&n).map(|()| n),
        None => {
            let base = project_dir
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let n = discover::normalize_project_name(&base);
            if n.is_empty() {
                Err(discover::DiscoverError::NoProjectName(
                    project_dir.to_path_buf(),
                ))
            } else {
                Ok(n)
            }
        }
    }
}
