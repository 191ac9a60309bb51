//! A small test aggregate (a bounded counter) and helpers for the writers' tests.

// Each test binary uses part of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use booking::group_commit::GroupCommit;
use booking::writers::{ColdStart, Writers};
use booking::RetryPolicy;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// Given a counter that holds 0 to 10.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Counter {
    pub value: u32,
}

#[derive(Debug, Clone)]
pub enum CounterCommand {
    Add(u32),
    /// Two events of `Added(1)`.
    AddOneTwice,
    Take(u32),
    /// A bug in a decision: the writer must survive it.
    Panic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CounterEvent {
    Added(u32),
    Taken(u32),
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Added(_) => "Added".into(),
            Self::Taken(_) => "Taken".into(),
        }
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the counter is full")]
pub struct Full;

impl Aggregate for Counter {
    const TYPE: &'static str = "TestCounter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = Full;
    type Services = ();

    async fn handle(
        &mut self,
        command: CounterCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Full> {
        let event = match command {
            CounterCommand::AddOneTwice if self.value + 2 > 10 => return Err(Full),
            CounterCommand::AddOneTwice => {
                sink.write(CounterEvent::Added(1), self).await;
                CounterEvent::Added(1)
            }
            CounterCommand::Add(n) if self.value + n > 10 => return Err(Full),
            CounterCommand::Add(n) => CounterEvent::Added(n),
            CounterCommand::Take(n) => CounterEvent::Taken(n.min(self.value)),
            CounterCommand::Panic => panic!("a bug in a decision"),
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: CounterEvent) {
        match event {
            CounterEvent::Added(n) => self.value += n,
            CounterEvent::Taken(n) => self.value -= n,
        }
    }
}

/// One process's writers over `pool`.
pub fn writers(pool: &PgPool) -> Arc<Writers<Counter>> {
    writers_starting(pool, ColdStart::Load)
}

pub async fn stored_events(pool: &PgPool, id: &str) -> Vec<(i64, serde_json::Value)> {
    sqlx::query_as(
        "SELECT sequence, payload FROM events
          WHERE aggregate_type = 'TestCounter' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

pub fn meta() -> HashMap<String, String> {
    HashMap::from([("correlation_id".to_owned(), "test".to_owned())])
}

/// One process's writers over `pool` that start as `cold` says.
pub fn writers_starting(pool: &PgPool, cold: ColdStart) -> Arc<Writers<Counter>> {
    let commit = Arc::new(GroupCommit::new(pool.clone()));
    Arc::new(Writers::new(
        pool.clone(),
        commit,
        RetryPolicy::default(),
        (std::time::Duration::from_secs(5), 100),
        cold,
    ))
}
