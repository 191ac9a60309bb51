//! `sqlx::migrate!` embeds the migration files at compile time; this makes cargo rebuild the crate
//! when one is added or changed (the macro alone does not tell cargo about new files).
fn main() {
    println!("cargo:rerun-if-changed=postgres");
    println!("cargo:rerun-if-changed=clickhouse");
}
