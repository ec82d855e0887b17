//! `cafe-server`: flags in, server started, wait for SIGINT or SIGTERM,
//! graceful shutdown out.

use std::process::ExitCode;

use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use cafe::config::{Cli, unsupported_memcached_flag};
use cafe::fdlimit;
use cafe::server::Server;

mod allocator;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(refusal) = args
        .iter()
        .skip(1)
        .find_map(|a| unsupported_memcached_flag(a))
    {
        eprintln!("cafe-server: {refusal}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse_from(args);
    // memcached's -v and -vv; RUST_LOG, when set, decides instead.
    let level = match cli.verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("cafe-server: {e}");
            return ExitCode::from(2);
        }
    };
    // Every connection is a descriptor: make room for them all before
    // starting, as memcached does, or say why not.
    match fdlimit::fit_connections(config.max_connections, config.threads) {
        Ok(Some((from, to))) => log::info!("raised the open-files limit from {from} to {to}"),
        Ok(None) => {}
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    }
    // Registered before the server starts, so an early signal is not lost.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("cafe-server: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::start(config) {
        Ok(server) => server,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // The server stops on a signal or, where enabled, on a client's
    // `shutdown`; either way this thread waits for the workers to finish.
    let stopper = server.stopper();
    let watcher = std::thread::Builder::new()
        .name("cafe-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                log::info!("signal {signal}: shutting down");
                stopper.stop();
            }
        });
    if let Err(e) = watcher {
        log::error!("cannot watch for signals: {e}");
        server.shutdown();
    }
    if server.join() {
        log::info!("stopped");
        ExitCode::SUCCESS
    } else {
        // A worker died and took the server down (fail-stop): a supervisor
        // restarts it whole.
        log::error!("a worker died: the server stopped");
        ExitCode::FAILURE
    }
}
