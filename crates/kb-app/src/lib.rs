//! kb assembled from its settings, for every way of running it (`kb serve`, the CLI commands,
//! the evaluation harness). This is the one place that names concrete adapters:
//!
//! - [`Components`] opens the catalog, the vector index of the generation the catalog names,
//!   the embedder and the engine client, and makes the [`Ingestor`](kb_ingest::Ingestor) and
//!   the [`Answerer`](kb_answer::Answerer) over them;
//! - [`generations`] says where each generation of the vector index lives, and [`reindex`]
//!   is the procedure that rebuilds the index into a new generation and switches to it;
//! - [`ServerInfo`] is `server.json`, by which a running `kb serve` tells the CLI where it is.
//!
//! The HTTP service (`kb-server`) and the command line (`kb-cli`) both stand on this crate;
//! neither depends on the other.

mod components;
pub mod generations;
mod private_files;
pub mod reindex;
mod server_info;

pub use components::{BuildError, Components, ingest_options};
pub use generations::{IndexGenerations, IndexLocation, SettingsGenerations};
pub use private_files::{create_dir as create_private_dir, write_atomically as write_private};
pub use server_info::{ServerInfo, generate_token};
