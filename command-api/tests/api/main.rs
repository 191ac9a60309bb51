//! End-to-end tests of the command API over HTTP, against a real PostgreSQL (one database per
//! test). Compiled as one test binary. `TEST_LOG=1` shows the server's logs.

mod access;
mod best_seats;
mod booking_all_or_nothing;
mod concurrency;
mod distribution;
mod events;
mod health;
mod helpers;
mod holds;
mod idempotency;
mod interrupted;
mod orders;
mod pages;
mod restart;
mod settle;
mod sweeper;
