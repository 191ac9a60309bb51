//! The ClickHouse stream on real servers: every report agrees with the event store after a
//! concurrent booking run, and crashes of the ingester or of ClickHouse lose nothing and count
//! nothing twice.

mod crashes;
mod helpers;
mod orders;
mod reports;
mod sharded;
