//! `tfr`: the Technical Fact Repository. One binary: `tfr serve` runs the server; the
//! operator commands `migrate-store` and `token` work on the store directly; every other
//! command is a client of a running server.

mod client;
mod config;
mod migrate_store;
mod serve;
mod store;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::ClientOptions;

#[derive(Parser, Debug)]
#[command(
    name = "tfr",
    version,
    about = "tfr, the Technical Fact Repository: record and search every technical change"
)]
struct Cli {
    /// Configuration file (TOML). Default: ./tfr.toml when it exists.
    #[arg(long, global = true, env = "TFR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Server to talk to (client commands).
    #[arg(long, global = true, env = "TFR_SERVER", value_name = "URL")]
    server: Option<String>,

    /// API token sent as `Authorization: Bearer` (client commands).
    #[arg(
        long,
        global = true,
        env = "TFR_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (HTTP API) on the embedded SQLite store or on PostgreSQL.
    Serve(serve::ServeArgs),
    /// Copy a whole history from the SQLite store to PostgreSQL (ids and times kept).
    MigrateStore(migrate_store::MigrateStoreArgs),
    /// Manage API tokens (create, list, revoke), directly on the store like `serve`.
    Token(token::TokenArgs),
    /// Record one event.
    Send(Box<client::SendArgs>),
    /// Search events, newest first.
    Log(client::LogArgs),
    /// Show the most recent event matching a query, and how long ago it happened.
    Last(client::LastArgs),
    /// Does changing A keep being followed by B? Hit rate, baseline, lift and p-value.
    Correlate(client::CorrelateArgs),
    /// Write matching events as NDJSON (the import format), oldest first.
    Export(client::ExportArgs),
    /// Load events from an NDJSON file (an export, or events to create).
    Import(client::ImportArgs),
    /// Fill the server with a realistic, deterministic demo history.
    Demo(client::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match config::FileConfig::load(cli.config.as_deref()) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("tfr: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tfr: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let options = ClientOptions {
        server: cli
            .server
            .or_else(|| file.server.clone())
            .unwrap_or_else(|| config::DEFAULT_SERVER.to_owned())
            .trim_end_matches('/')
            .to_owned(),
        token: cli.token.or_else(|| file.token.clone()),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args, file).await,
            Command::MigrateStore(args) => migrate_store::run(args).await,
            Command::Token(args) => token::run(args, file).await,
            Command::Send(args) => client::send::run(*args, &options).await,
            Command::Log(args) => client::log::run(args, &options).await,
            Command::Last(args) => client::last::run(args, &options).await,
            Command::Correlate(args) => client::correlate::run(args, &options).await,
            Command::Export(args) => client::export::run(args, &options).await,
            Command::Import(args) => client::import::run(args, &options).await,
            Command::Demo(args) => client::demo::run(args, &options).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tfr: {error:#}");
            ExitCode::FAILURE
        }
    }
}
