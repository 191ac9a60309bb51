//! Rows of a read model looked up by key.
//!
//! Policy: rows of the tables that grow with a sale (holds, orders) are read by key with one index
//! lookup per key ([`by_keys`]), not with `key = ANY($1)`, whose plan a connection keeps from the
//! day the table was young. (Tables of one row per ticketed event keep `ANY`.)

/// `SELECT {columns} FROM {table}` of the rows whose `{key}` is in the `uuid[]` parameter `$1`
/// (unique keys; locked `FOR UPDATE` when `lock`): one index lookup per key, whatever plan
/// the connection keeps. `{key} = ANY($1)` was planned as a scan of the whole table on a young
/// table (or without statistics), and connections keep that plan as the table grows: under the
/// durable-holds benchmark the projector's lookup of a batch's holds took 50 ms a call on
/// average (up to 422 ms) at 70,000 holds.
pub(crate) fn by_keys(columns: &str, table: &str, key: &str, lock: bool) -> String {
    let lock = if lock { " FOR UPDATE" } else { "" };
    format!(
        "SELECT r.* FROM unnest($1::uuid[]) AS k(key)
          CROSS JOIN LATERAL (SELECT {columns} FROM {table} WHERE {key} = k.key LIMIT 1{lock}) r"
    )
}
