//! `sqlx::migrate!` embeds the workspace's migrations (`migrations/sqlite/` and
//! `migrations/postgres/`) at compile time: rebuild when they change.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
