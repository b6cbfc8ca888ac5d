//! `sisd`: the stress-test daemon. Boots and owns a SIS instance in QEMU, runs stress tests on it in the
//! background through its web API, keeps every run's samples, events and report in SQLite, and serves the
//! dashboard and the `/api/stress/*` endpoints on 127.0.0.1 (docs/dashboard.md).
#![forbid(unsafe_code)]

mod api;
mod daemon;
mod db;
mod error;
mod kernel;
mod live;
mod request;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

/// The stress-test daemon and dashboard.
#[derive(Debug, Parser)]
#[command(name = "sisd", version)]
struct Args {
    /// Port on 127.0.0.1 (0: any free port; the URL is printed).
    #[arg(long, default_value_t = 8600)]
    port: u16,
    /// Directory of the history database (created if absent).
    #[arg(long, default_value = "target/sisd")]
    data_dir: PathBuf,
    /// The kernel ELF (default: the workspace's release build, or $SIS_KERNEL_ELF).
    #[arg(long)]
    kernel: Option<PathBuf>,
    /// Directory of the dashboard's files.
    #[arg(long, default_value = "tools/sis-daemon/web")]
    web_dir: PathBuf,
    /// Directory of the dashboard's third-party files, served under /vendor/ (default: the workspace's
    /// target/dashboard/vendor, which `cargo xtask` fills from tools/sis-daemon/package-lock.json).
    #[arg(long)]
    vendor_dir: Option<PathBuf>,
    /// Boot SIS now rather than at the first run.
    #[arg(long)]
    boot: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(error) = run(args).await {
        eprintln!("sisd: {error}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|error| format!("cannot create {}: {error}", args.data_dir.display()))?;
    let path = args.data_dir.join("history.sqlite");
    let (db, aborted) = db::Db::open(&path).map_err(|error| format!("cannot open {}: {error}", path.display()))?;
    if aborted > 0 {
        println!("sisd: {aborted} run(s) interrupted by the daemon's last stop recorded as aborted");
    }
    let daemon = daemon::Daemon::new(db, args.kernel, args.data_dir.clone());
    if args.boot {
        daemon.kernel().await.map_err(|error| error.message)?;
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
        .await
        .map_err(|error| format!("cannot listen on 127.0.0.1:{}: {error}", args.port))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    println!("sisd: history in {}", path.display());
    println!("sisd: dashboard at http://{address}/");
    let vendor_dir = args.vendor_dir.unwrap_or_else(sis_testing::dashboard_vendor_dir);
    if !vendor_dir.is_dir() {
        println!(
            "sisd: {} is missing: the dashboard has no charts until `cargo xtask` fetches them",
            vendor_dir.display()
        );
    }
    let app = api::router(daemon.clone(), &args.web_dir, &vendor_dir);
    // Ctrl-C or SIGTERM: QEMU is stopped and the daemon exits at once (a browser's event stream never ends, so
    // waiting for connections to close would wait forever). A run under way stays `running` in the file and is
    // recorded as aborted at the next start.
    let stopping = daemon.clone();
    tokio::spawn(async move {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match terminate.as_mut() { Some(signal) => { signal.recv().await; } None => std::future::pending().await } } => {}
        }
        if let Some(kernel) = stopping.kernel_if_booted().await {
            kernel.kill();
        }
        println!("sisd: stopped");
        std::process::exit(0);
    });
    axum::serve(listener, app).await.map_err(|error| error.to_string())
}
