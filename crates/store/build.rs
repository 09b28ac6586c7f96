//! Rebuild the store when a migration is added or changed: `embed_migrations!` reads
//! `migrations/` at compile time, and cargo does not know it depends on that folder.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
