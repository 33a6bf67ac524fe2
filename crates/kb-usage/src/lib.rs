//! kb's usage ledger: every engine call attempt (retries and failures included) in the
//! catalog's database, priced with the `[usage] prices` table, and summed for `kb usage`.
//!
//! - [`UsageDb`] opens the catalog's database, the SQLite file (`{data_dir}/kb.db`, WAL) or
//!   the Postgres database of `catalog.url` (where every replica writes its rows), with the
//!   workspace's migration set for it, the same one `kb-catalog` applies.
//! - [`UsageLedger`] is the writing side: its [`UsageLedger::recorder`] is a
//!   [`kb_engine::UsageRecorder`] that only puts records on a bounded queue (an engine call
//!   never waits for, or fails because of, the ledger); a background task inserts them in
//!   batches, one transaction each. A full queue drops records, counted and logged;
//!   [`UsageLedger::close`] writes what is queued before returning.
//! - [`report`] sums the calls since a time ([`Since`]) by model, endpoint, day or kind
//!   ([`GroupBy`]): calls, failures, tokens, cost, latency percentiles.
//!
//! Rows name the endpoint by its configured name; API keys never reach the ledger.

mod config;
mod db;
mod error;
mod ledger;
mod report;

pub use config::{Price, UsageConfig};
pub use db::UsageDb;
pub use error::UsageError;
pub use ledger::{LedgerRecorder, LedgerStats, UsageLedger};
pub use report::{GroupBy, Since, UsageReport, UsageRow, report};
