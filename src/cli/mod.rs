//! The command line: one file per subcommand. Each file owns its clap `Args` and a `run`
//! that returns the process exit status. Nothing here does the work itself. Besides them,
//! `values.rs` parses option values and `scheduler_client.rs` holds what the scheduler's
//! client subcommands share.

use clap::{Parser, Subcommand};

pub mod agent;
pub mod apps;
pub mod deploy;
pub mod down;
pub mod image;
pub mod move_app;
pub mod platform;
pub mod play;
pub mod proxy;
pub mod scheduler;
pub mod scheduler_client;
pub mod token;
pub mod up;
pub mod values;
pub mod vault;

/// infra: provision hosts, build local clusters, run the platform.
#[derive(Parser, Debug)]
#[command(name = "infra", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a playbook against an inventory, like ansible-playbook.
    Play(play::PlayArgs),
    /// Create the inventory's hosts (where it asks) and converge them with playbooks/site.yaml.
    Up(up::UpArgs),
    /// Remove the hosts and network that `infra up` created.
    Down(down::DownArgs),
    /// Build or inspect the local cluster's host image.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Create or update an app from a Marathon app definition.
    Deploy(deploy::DeployArgs),
    /// Change an app's instance count.
    Scale(apps::ScaleArgs),
    /// List apps.
    Apps(apps::AppsArgs),
    /// List tasks, of one app or all.
    Tasks(apps::TasksArgs),
    /// Restart an app's tasks (a rolling deployment).
    Restart(apps::RestartArgs),
    /// Move an app's task with its persistent volumes to another agent.
    Move(move_app::MoveArgs),
    /// Remove an app and stop its tasks.
    Destroy(apps::AppRefArgs),
    /// Run the scheduler (control nodes): Marathon-compatible API, placement, DNS.
    Scheduler(scheduler::SchedulerArgs),
    /// Run the agent (compute nodes): runs the tasks the scheduler assigns.
    Agent(agent::AgentArgs),
    /// Run the proxy syncer (proxy nodes): keeps nginx in step with the scheduler.
    Proxy(proxy::ProxyArgs),
    /// Create, list and revoke the scheduler's API tokens (admin).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Encrypt, decrypt, view, edit and rekey Ansible Vault files and strings.
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    /// The keeper of SSH connections between runs (started by the runs themselves).
    #[command(name = "ssh-mux", hide = true)]
    SshMux(SshMuxArgs),
}

#[derive(clap::Args, Debug)]
pub struct SshMuxArgs {
    /// The socket to serve.
    #[arg(long)]
    socket: std::path::PathBuf,
}

/// Parses the command line, runs the subcommand on a tokio runtime, maps errors to exit 1.
pub fn main() -> i32 {
    // Usage errors exit 1 ("invalid input, nothing ran"); clap's own default is 2, which
    // infra reserves for "a task failed".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 1 } else { 0 };
            let _ = err.print();
            return code;
        }
    };
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return 1;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Play(args) => play::run(args).await,
        Command::Up(args) => up::run(args).await,
        Command::Down(args) => down::run(args).await,
        Command::Image(cmd) => image::run(cmd).await,
        Command::Deploy(args) => deploy::run(args).await,
        Command::Scale(args) => apps::scale(args).await,
        Command::Apps(args) => apps::list_apps(args).await,
        Command::Tasks(args) => apps::list_tasks(args).await,
        Command::Restart(args) => apps::restart(args).await,
        Command::Move(args) => move_app::run(args).await,
        Command::Destroy(args) => apps::destroy(args).await,
        Command::Scheduler(args) => scheduler::run(args).await,
        Command::Agent(args) => agent::run(args).await,
        Command::Proxy(args) => proxy::run(args).await,
        Command::Token(cmd) => token::run(cmd).await,
        Command::Vault(cmd) => vault::run(cmd).await,
        Command::SshMux(args) => {
            crate::transport::mux::keeper::serve(&args.socket).await?;
            Ok(0)
        }
    }
}

/// Logs go to stderr, filtered by `INFRA_LOG` (e.g. `INFRA_LOG=debug`); quiet by default.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INFRA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
