//! The journal the load driver wrote (`acks.jsonl`): what clients were told, one JSON object per
//! acknowledged operation.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// The journal the load driver wrote.
pub struct Acks {
    pub events: Vec<String>,
    pub holds: HashMap<String, Value>,
    pub booked: HashSet<String>,
    pub released: HashSet<String>,
    /// Orders placed (order id -> hold id), and orders whose cancellation was acknowledged.
    pub orders: HashMap<String, String>,
    pub cancelled: HashSet<String>,
}

pub fn read_acks(out: &std::path::Path) -> Acks {
    let text = std::fs::read_to_string(out.join("acks.jsonl")).expect("the load driver's journal");
    let mut acks = Acks {
        events: Vec::new(),
        holds: HashMap::new(),
        booked: HashSet::new(),
        released: HashSet::new(),
        orders: HashMap::new(),
        cancelled: HashSet::new(),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("journal lines are JSON");
        let id = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        match v["op"].as_str() {
            Some("event") => acks.events.push(id("event_id")),
            Some("hold") => {
                acks.holds.insert(id("hold_id"), v.clone());
            }
            Some("book") => {
                acks.booked.insert(id("hold_id"));
            }
            Some("release") => {
                acks.released.insert(id("hold_id"));
            }
            Some("order") => {
                acks.orders.insert(id("order_id"), id("hold_id"));
            }
            Some("cancel_order") => {
                acks.cancelled.insert(id("order_id"));
            }
            _ => {}
        }
    }
    acks
}
