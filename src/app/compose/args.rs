//! The command line of `rrun app compose [-f FILE]... [-p NAME]
//! [--env-file F]... VERB` and its dispatch (one arm per verb).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{LoadOptions, Project};
use crate::app::paths::Paths;

/// Which project: its files, name and variables.
#[derive(Args, Debug, Clone, Default)]
pub struct ProjectOpts {
    /// The compose file (repeatable: later files override earlier ones)
    /// [default: $COMPOSE_FILE (':'-separated), else compose.yaml,
    /// compose.yml, docker-compose.yml or docker-compose.yaml in the
    /// current directory, with its .override twin]
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

/// Runs `rrun app compose VERB`; returns the exit code.
pub fn main(_paths: &Paths, a: &ComposeArgs) -> Result<i32> {
    match &a.command {
        ComposeCommand::Config(c) => super::config::config(&a.opts, c),
    }
}
