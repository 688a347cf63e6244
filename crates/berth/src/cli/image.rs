//! Image commands: `pull`, `push`, `images`, `tag`, `rmi`, `image …`, `save`, `load`,
//! `import`, `login`, `logout`.
//!
//! There is no daemon yet, so these open the image store at `<--root>/image` directly. Each
//! command is a small function over [`Store`]; a daemon client can replace the store calls
//! without touching argument parsing or output.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_image::registry::AuthFile;
use berth_image::{Image, ImportOptions, Platform, Reference, SaveFormat, Store};
use clap::{Args, Subcommand, ValueEnum};

use super::image_format::{age, image_rows, inspect_json, now, table};
use super::image_progress::human_bytes;
use super::image_registry;
use super::{GlobalArgs, exit};

/// The top-level image commands (flattened into `berth`'s command list).
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// List images.
    Images(ImagesArgs),
    /// Create a tag TARGET that refers to SOURCE.
    Tag(TagArgs),
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Save images to a docker-archive tar or an OCI layout directory.
    Save(SaveArgs),
    /// Load images from a docker-archive or OCI layout (directory or tar).
    Load(LoadArgs),
    /// Create an image from a root file system (tar file or directory).
    Import(ImportArgs),
    /// Log in to a registry.
    Login(LoginArgs),
    /// Log out from a registry.
    Logout(LogoutArgs),
}

/// `berth image …`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Show details of images as JSON.
    Inspect(InspectArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Remove one or more images.
    Rm(RmiArgs),
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// Create a tag TARGET that refers to SOURCE.
    Tag(TagArgs),
    /// Save images.
    Save(SaveArgs),
    /// Load images.
    Load(LoadArgs),
    /// Create an image from a root file system.
    Import(ImportArgs),
}

/// Registry connection options shared by pull, push and login.
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Allow plain HTTP for this registry (host[:port]); localhost and 127.0.0.0/8 always are.
    #[arg(
        long = "insecure-registry",
        env = "BERTH_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure: Vec<String>,
}

/// `berth pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference, e.g. `busybox` or `localhost:5000/app:1`.
    pub image: String,
    /// Platform to pull from a multi-platform image (os/arch[/variant]).
    #[arg(long, default_value = "linux/amd64")]
    pub platform: String,
    /// Print only the image reference.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `berth push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Local image reference to push (to its own registry and repository).
    pub image: String,
    /// Upload blobs larger than this many bytes in chunks of this size.
    #[arg(long)]
    pub chunk_size: Option<u64>,
    /// Print only the pushed digest.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Output formats of `images`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ListFormat {
    /// A table.
    Table,
    /// One JSON object per line.
    Json,
}

/// `berth images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ListFormat,
    /// Show full IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the build cache's intermediate step images too.
    #[arg(short, long)]
    pub all: bool,
}

/// `berth tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// Existing image (reference or ID).
    pub source: String,
    /// New reference.
    pub target: String,
}

/// `berth rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images (references or IDs).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove an image ID even when several tags point at it.
    #[arg(short, long)]
    pub force: bool,
}

/// `berth image inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images (references or IDs).
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `berth image history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Image (reference or ID).
    pub image: String,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
}

/// `berth image prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt (accepted for Docker compatibility; berth never prompts).
    #[arg(short, long)]
    pub force: bool,
}

/// Formats of `save`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ArchiveFormat {
    /// `docker save` tar.
    DockerArchive,
    /// OCI image layout directory.
    Oci,
}

/// `berth save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images to save.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Output file (docker-archive) or directory (oci).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Archive format.
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: ArchiveFormat,
}

/// `berth load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Input tar file or OCI layout directory.
    #[arg(short, long)]
    pub input: PathBuf,
    /// Print only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `berth import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Root file system: a tar file (plain, gzip or zstd) or a directory.
    pub source: PathBuf,
    /// Reference to tag the new image with.
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
    /// USER, WORKDIR, VOLUME, STOPSIGNAL).
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message recorded in the history.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Platform recorded in the config.
    #[arg(long)]
    pub platform: Option<String>,
}

/// `berth login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host (default docker.io).
    pub registry: Option<String>,
    /// User name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub registry_args: RegistryArgs,
}

/// `berth logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host (default docker.io).
    pub registry: Option<String>,
}

pub(super) type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs an image command and maps errors to exit codes, printing the error chain.
pub fn run(global: &GlobalArgs, command: Commands) -> ExitCode {
    match dispatch(global, command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            eprintln!("{msg}");
            ExitCode::from(exit::RUNTIME)
        }
    }
}

fn dispatch(global: &GlobalArgs, command: Commands) -> Result<()> {
    let store = || Store::open(&global.root.join("image"));
    match command {
        Commands::Pull(a) | Commands::Image(ImageCommand::Pull(a)) => {
            image_registry::pull(&store()?, a)
        }
        Commands::Push(a) | Commands::Image(ImageCommand::Push(a)) => {
            image_registry::push(&store()?, a)
        }
        Commands::Images(a) | Commands::Image(ImageCommand::Ls(a)) => images(&store()?, a),
        Commands::Tag(a) | Commands::Image(ImageCommand::Tag(a)) => {
            let store = store()?;
            let image = store.find(&a.source)?;
            store.tag(&image, &Reference::parse(&a.target)?)?;
            Ok(())
        }
        Commands::Rmi(a) | Commands::Image(ImageCommand::Rm(a)) => rmi(&store()?, a),
        Commands::Image(ImageCommand::Inspect(a)) => {
            let store = store()?;
            let mut out = Vec::new();
            for name in &a.images {
                out.push(inspect_json(&store.find(name)?));
            }
            emit(&format!("{}\n", serde_json::to_string_pretty(&out)?))
        }
        Commands::Image(ImageCommand::History(a)) => history(&store()?, a),
        Commands::Image(ImageCommand::Prune(a)) => {
            // The build cache's step images are the builder's, as Docker keeps its build
            // cache out of `image prune`: `builder prune` removes them.
            let store = store()?;
            let cached = berth_build::cache::CacheStore::open(store.root())?.manifests()?;
            let keep: Vec<_> = store
                .list()?
                .into_iter()
                .filter(|i| cached.contains(&i.manifest_digest.to_string()))
                .map(|i| i.id.clone())
                .collect();
            let report = store.prune(a.all, &keep)?;
            if !report.images_removed.is_empty() {
                println!("Deleted Images:");
                for id in &report.images_removed {
                    println!("deleted: {id}");
                }
            }
            println!(
                "Total reclaimed space: {}",
                human_bytes(report.gc.bytes_freed)
            );
            Ok(())
        }
        Commands::Save(a) | Commands::Image(ImageCommand::Save(a)) => {
            let refs = a
                .images
                .iter()
                .map(|i| Reference::parse(i))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let format = match a.format {
                ArchiveFormat::DockerArchive => SaveFormat::DockerArchive,
                ArchiveFormat::Oci => SaveFormat::OciLayout,
            };
            store()?.save(&refs, format, &a.output)?;
            Ok(())
        }
        Commands::Load(a) | Commands::Image(ImageCommand::Load(a)) => {
            for image in store()?.load(&a.input)? {
                if a.quiet {
                    println!("{}", image.id);
                } else if image.references.is_empty() {
                    println!("Loaded image ID: {}", image.id);
                } else {
                    for r in &image.references {
                        println!("Loaded image: {}", r.familiar());
                    }
                }
            }
            Ok(())
        }
        Commands::Import(a) | Commands::Image(ImageCommand::Import(a)) => {
            let reference = a.reference.as_deref().map(Reference::parse).transpose()?;
            let options = ImportOptions {
                changes: a.change,
                message: a.message,
                platform: a.platform.as_deref().map(Platform::parse).transpose()?,
            };
            let image = store()?.import_rootfs(&a.source, reference.as_ref(), &options)?;
            println!("{}", image.id);
            Ok(())
        }
        Commands::Login(a) => image_registry::login(a),
        Commands::Logout(a) => {
            let registry = a.registry.unwrap_or_else(|| "docker.io".into());
            let mut file = AuthFile::load(&AuthFile::default_path())?;
            if file.remove(&registry) {
                file.save()?;
                println!("Removing login credentials for {registry}");
            } else {
                println!("Not logged in to {registry}");
            }
            Ok(())
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The images `berth images` shows: without `-a`, untagged step images the build cache
/// keeps are left out (Docker's intermediate images); `builder prune` removes them.
fn listed(store: &Store, all: bool) -> Result<Vec<Image>> {
    let mut list = store.list()?;
    if !all {
        let cached = berth_build::cache::CacheStore::open(store.root())?.manifests()?;
        list.retain(|i| {
            !(i.references.is_empty() && cached.contains(&i.manifest_digest.to_string()))
        });
    }
    Ok(list)
}

fn images(store: &Store, a: ImagesArgs) -> Result<()> {
    let list = listed(store, a.all)?;
    let id = |i: &Image| {
        if a.no_trunc {
            i.id.to_string()
        } else {
            i.id.short().to_owned()
        }
    };
    if a.quiet {
        let mut seen = std::collections::HashSet::new();
        for i in &list {
            if seen.insert(i.id.clone()) {
                println!("{}", id(i));
            }
        }
        return Ok(());
    }
    let rows = image_rows(&list);
    match a.format {
        ListFormat::Json => {
            let mut out = String::new();
            for (repo, tag, i) in rows {
                let v = serde_json::json!({
                    "Repository": repo, "Tag": tag, "ID": id(i),
                    "Digest": i.manifest_digest.to_string(),
                    "CreatedAt": i.config.created, "CreatedSince": age(i.config.created.as_deref(), now()),
                    "Size": human_bytes(i.size()), "VirtualSize": i.size(),
                });
                out.push_str(&format!("{v}\n"));
            }
            emit(&out)?;
        }
        ListFormat::Table => {
            let t = now();
            let cells: Vec<Vec<String>> = rows
                .into_iter()
                .map(|(repo, tag, i)| {
                    vec![
                        repo,
                        tag,
                        id(i),
                        age(i.config.created.as_deref(), t),
                        human_bytes(i.size()),
                    ]
                })
                .collect();
            emit(&table(
                &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
                &cells,
            ))?;
        }
    }
    Ok(())
}

fn rmi(store: &Store, a: RmiArgs) -> Result<()> {
    // Every image is tried; all errors but the last are printed here, the last by `run`.
    let mut failed: Option<Box<dyn std::error::Error + Send + Sync>> = None;
    for name in &a.images {
        if let Err(e) = rmi_one(store, name, a.force)
            && let Some(previous) = failed.replace(e)
        {
            eprintln!("error: {previous}");
        }
    }
    store.gc(&[])?;
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn rmi_one(store: &Store, name: &str, force: bool) -> Result<()> {
    // A name that is a reference of some image: untag it (deleting the image with its last tag).
    if let Ok(r) = Reference::parse(name)
        && store.resolve(&r).is_ok()
    {
        println!("Untagged: {}", r.familiar());
        if let Some(id) = store.untag(&r)? {
            println!("Deleted: {id}");
        }
        return Ok(());
    }
    let image = store.find(name)?;
    for r in store.remove(&image, force)? {
        println!("Untagged: {}", r.familiar());
    }
    println!("Deleted: {}", image.id);
    Ok(())
}

fn history(store: &Store, a: HistoryArgs) -> Result<()> {
    let image = store.find(&a.image)?;
    let t = now();
    let mut layers = image.manifest.layers.iter();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let history = &image.config.history;
    if history.is_empty() {
        for l in image.manifest.layers.iter() {
            rows.push(vec![
                "<missing>".into(),
                "N/A".into(),
                String::new(),
                human_bytes(l.size),
                String::new(),
            ]);
        }
    }
    for h in history {
        let size = if h.empty_layer {
            0
        } else {
            layers.next().map(|l| l.size).unwrap_or(0)
        };
        let mut by = h.created_by.clone().unwrap_or_default();
        if !a.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        rows.push(vec![
            "<missing>".into(),
            age(h.created.as_deref(), t),
            by,
            human_bytes(size),
            h.comment.clone().unwrap_or_default(),
        ]);
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top[0] = if a.no_trunc {
            image.id.to_string()
        } else {
            image.id.short().to_owned()
        };
    }
    emit(&table(
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &rows,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::Parser;

    /// Parses a command line as `berth` would and runs the image command in it.
    fn berth(args: &[&str]) -> Result<()> {
        let cli = Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))?;
        match cli.command {
            Command::Image(c) => dispatch(&cli.global, c),
            other => panic!("not an image command: {other:?}"),
        }
    }

    fn busybox_dir(dir: &std::path::Path) -> PathBuf {
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).unwrap();
        rootfs
    }

    #[test]
    fn import_tag_rmi_through_the_command_line() {
        if !nix_is_root() {
            panic!("this test needs root: importing keeps file owners");
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let root = root.to_str().unwrap();
        let rootfs = busybox_dir(dir.path());
        berth(&[
            "--root",
            root,
            "import",
            rootfs.to_str().unwrap(),
            "bb:1",
            "--change",
            "CMD [\"sh\"]",
            "--change",
            "ENV A=1",
        ])
        .unwrap();
        berth(&["--root", root, "tag", "bb:1", "localhost:5000/bb:2"]).unwrap();
        let store = Store::open(&PathBuf::from(root).join("image")).unwrap();
        let image = store.resolve(&Reference::parse("bb:1").unwrap()).unwrap();
        assert_eq!(image.config.config.env, ["A=1"]);
        assert_eq!(
            image.references,
            vec![
                Reference::parse("bb:1").unwrap(),
                Reference::parse("localhost:5000/bb:2").unwrap()
            ]
        );
        // Removing by ID needs --force while two tags point at it.
        let id = image.id.short().to_owned();
        assert!(berth(&["--root", root, "rmi", &id]).is_err());
        berth(&["--root", root, "rmi", "bb:1"]).unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
        berth(&["--root", root, "rmi", "-f", &id]).unwrap();
        assert_eq!(store.list().unwrap().len(), 0);
        // rmi collected the garbage: no blob or snapshot is left.
        let blobs = std::fs::read_dir(PathBuf::from(root).join("image/blobs/sha256")).unwrap();
        assert_eq!(blobs.count(), 0);
    }

    #[test]
    fn save_and_load_through_the_command_line() {
        if !nix_is_root() {
            panic!("this test needs root: importing keeps file owners");
        }
        let dir = tempfile::tempdir().unwrap();
        let rootfs = busybox_dir(dir.path());
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let tar = dir.path().join("out.tar");
        let (a, b, tar) = (
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            tar.to_str().unwrap(),
        );
        berth(&["--root", a, "import", rootfs.to_str().unwrap(), "saved:1"]).unwrap();
        berth(&["--root", a, "save", "-o", tar, "saved:1"]).unwrap();
        berth(&["--root", b, "load", "-i", tar]).unwrap();
        let id = |root: &str| {
            Store::open(&PathBuf::from(root).join("image"))
                .unwrap()
                .resolve(&Reference::parse("saved:1").unwrap())
                .unwrap()
                .id
        };
        assert_eq!(id(a), id(b));
        assert!(berth(&["--root", b, "image", "inspect", "saved:1"]).is_ok());
        assert!(berth(&["--root", b, "image", "history", "saved:1"]).is_ok());
        let err = berth(&["--root", b, "image", "inspect", "missing:1"]).unwrap_err();
        assert_eq!(err.to_string(), "no such image: missing:1");
    }

    fn nix_is_root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(|l| l.split_whitespace().nth(2) == Some("0"))
            })
            .unwrap_or(false)
    }
}
