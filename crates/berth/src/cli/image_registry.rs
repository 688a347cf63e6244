//! The registry-facing image commands: `pull`, `push`, `login`.

use std::io::BufRead;

use berth_image::registry::{AuthFile, Client, ClientOptions, PushOptions};
use berth_image::{Platform, Reference, Store};

use super::image::{LoginArgs, PullArgs, PushArgs, RegistryArgs, Result};
use super::image_progress::Reporter;

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub(super) fn client_options(registry: &str, args: &RegistryArgs) -> ClientOptions {
    ClientOptions {
        credentials: AuthFile::lookup(registry),
        insecure: args.insecure.clone(),
    }
}

pub(super) fn pull(store: &Store, a: PullArgs) -> Result<()> {
    let r = Reference::parse(&a.image)?;
    let platform = Platform::parse(&a.platform)?;
    let reporter = Reporter::new(a.quiet, "Pull complete");
    let options = client_options(r.registry(), &a.registry);
    let image = runtime()?.block_on(store.pull(&r, &platform, &options, reporter.callback()));
    reporter.finish();
    let image = image?;
    if !a.quiet {
        println!("Digest: {}", image.manifest_digest);
        println!("Status: Downloaded image for {}", r.familiar());
    }
    println!("{r}");
    Ok(())
}

pub(super) fn push(store: &Store, a: PushArgs) -> Result<()> {
    let r = Reference::parse(&a.image)?;
    let reporter = Reporter::new(a.quiet, "Pushed");
    let options = PushOptions {
        client: client_options(r.registry(), &a.registry),
        chunk_size: a.chunk_size,
    };
    let digest = runtime()?.block_on(store.push(&r, &options, reporter.callback()));
    reporter.finish();
    let digest = digest?;
    if a.quiet {
        println!("{digest}");
    } else {
        let size = store.blobs().size(&digest).unwrap_or(0);
        println!(
            "{}: digest: {digest} size: {size}",
            r.tag().unwrap_or("latest")
        );
    }
    Ok(())
}

pub(super) fn login(a: LoginArgs) -> Result<()> {
    let registry = a.registry.unwrap_or_else(|| "docker.io".into());
    let username = match a.username {
        Some(u) => u,
        None => {
            eprint!("Username: ");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    let password = match (a.password, a.password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
        (Some(_), true) => {
            return Err("--password and --password-stdin are mutually exclusive".into());
        }
        (None, false) => {
            return Err("give the password with --password-stdin (or --password)".into());
        }
    };
    let options = ClientOptions {
        credentials: berth_image::Credentials::Basic {
            username: username.clone(),
            password: password.clone(),
        },
        insecure: a.registry_args.insecure,
    };
    let client = Client::new(&registry, options)?;
    runtime()?.block_on(client.login())?;
    let path = AuthFile::default_path();
    let mut file = AuthFile::load(&path)?;
    file.set(&registry, &username, &password);
    file.save()?;
    println!("Login Succeeded");
    Ok(())
}
