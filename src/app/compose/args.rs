//! The command line of `rrun app compose [-f FILE]... [-p NAME]
//! [--env-file F]... VERB` and its dispatch (one arm per verb).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::ops::{DownArgs, LogsArgs, PsArgs, RestartArgs};
use super::up::UpArgs;
use super::{LoadOptions, Project};
use crate::app::paths::Paths;

/// Which project: its files, name and variables.
#[derive(Args, Debug, Clone, Default)]
pub struct ProjectOpts {
    /// The compose file (repeatable: later files override earlier ones)
    /// [default: compose.yaml, compose.yml, docker-compose.yml or
    /// docker-compose.yaml in the current directory]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The project's name [default: name: in the file, else
    /// $COMPOSE_PROJECT_NAME, else the file's directory's name]
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Variables for ${VAR} in the file (repeatable) [default: .env in
    /// the project's directory]
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
}

impl ProjectOpts {
    /// Loads the project (this process's directory and environment),
    /// printing its warnings on stderr.
    pub fn load(&self) -> Result<Project> {
        let o = LoadOptions::from_process(
            self.files.clone(),
            self.project_name.clone(),
            self.env_files.clone(),
        )?;
        let p = super::load(&o)?;
        for w in &p.warnings {
            eprintln!("{w}");
        }
        Ok(p)
    }
}

#[derive(Args, Debug)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub opts: ProjectOpts,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Subcommand, Debug)]
pub enum ComposeCommand {
    /// Print the resolved file (checked, interpolated, normalised)
    Config(ConfigArgs),
    /// Create and start the services, in dependency order
    Up(UpArgs),
    /// Stop and remove the services' apps and the project's networks
    Down(DownArgs),
    /// List the project's apps
    Ps(PsArgs),
    /// Print the services' logs, each line prefixed with its service
    Logs(LogsArgs),
    /// Restart services
    Restart(RestartArgs),
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Only the services' names, one a line, in the file's order
    #[arg(long)]
    pub services: bool,
}

/// `rrun app config`: `rrun app compose config`'s alias.
#[derive(Args, Debug)]
pub struct ConfigAlias {
    #[command(flatten)]
    pub opts: ProjectOpts,
    #[command(flatten)]
    pub args: ConfigArgs,
}

/// `rrun app up`/`down`: `rrun app compose up`/`down`'s aliases.
#[derive(Args, Debug)]
pub struct UpAlias {
    #[command(flatten)]
    pub opts: ProjectOpts,
    #[command(flatten)]
    pub args: UpArgs,
}

#[derive(Args, Debug)]
pub struct DownAlias {
    #[command(flatten)]
    pub opts: ProjectOpts,
    #[command(flatten)]
    pub args: DownArgs,
}

/// Runs `rrun app compose VERB`; returns the exit code.
pub fn main(paths: &Paths, a: &ComposeArgs) -> Result<i32> {
    match &a.command {
        ComposeCommand::Config(c) => super::config::config(&a.opts, c),
        ComposeCommand::Up(u) => super::up::up(paths, &a.opts.load()?, u),
        ComposeCommand::Down(d) => super::ops::down(paths, &a.opts.load()?, d),
        ComposeCommand::Ps(x) => super::ops::ps(paths, &a.opts.load()?, x),
        ComposeCommand::Logs(l) => super::ops::logs(paths, &a.opts.load()?, l),
        ComposeCommand::Restart(r) => super::ops::restart(paths, &a.opts.load()?, r),
    }
}
