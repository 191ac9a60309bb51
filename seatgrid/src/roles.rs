//! What one `seatgrid serve` process does: its roles (`--roles` or `SEATGRID_ROLES`).
//!
//! Policy:
//! - `api` serves REST, GraphQL and the pages, and decides commands; it is stateless between
//!   requests (everything is in PostgreSQL) and runs in as many processes as wanted.
//! - `projector` (read models and their cache), `ingester` (ClickHouse), `sweeper` (expiries) and
//!   `payments` (the payment relay and the order process) are singletons: every process given one
//!   competes for it ([`crate::leadership`]) and one at a time runs it; the others stand by and
//!   take over when it dies.
//! - The default is every role, so one process is the whole system. Every process, whatever its
//!   roles, answers `/health/live`, `/health/ready` and `/metrics`.

use std::fmt;
use std::str::FromStr;

/// One singleton role: its name, and its PostgreSQL advisory lock key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Singleton {
    Projector,
    Ingester,
    Sweeper,
    Payments,
}

impl Singleton {
    pub const ALL: [Singleton; 4] = [
        Singleton::Projector,
        Singleton::Ingester,
        Singleton::Sweeper,
        Singleton::Payments,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Projector => "projector",
            Self::Ingester => "ingester",
            Self::Sweeper => "sweeper",
            Self::Payments => "payments",
        }
    }

    /// The advisory lock that makes its holder the leader: fixed numbers in a range of SeatGrid's
    /// own (`0x5EA7_0000_0000_00xx`), per database.
    pub fn lock_key(self) -> i64 {
        0x5EA7_0000_0000_0000
            + match self {
                Self::Projector => 1,
                Self::Ingester => 2,
                Self::Sweeper => 3,
                Self::Payments => 4,
            }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Roles {
    pub api: bool,
    pub projector: bool,
    pub ingester: bool,
    pub sweeper: bool,
    pub payments: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        projector: true,
        ingester: true,
        sweeper: true,
        payments: true,
    };

    pub fn has(&self, role: Singleton) -> bool {
        match role {
            Singleton::Projector => self.projector,
            Singleton::Ingester => self.ingester,
            Singleton::Sweeper => self.sweeper,
            Singleton::Payments => self.payments,
        }
    }
}

impl Default for Roles {
    fn default() -> Self {
        Self::ALL
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: roles are all, api, projector, ingester, sweeper and payments")]
pub struct UnknownRole(String);

impl FromStr for Roles {
    type Err = UnknownRole;

    /// `all`, or a comma-separated list such as `api,projector`.
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        let mut roles = Roles {
            api: false,
            projector: false,
            ingester: false,
            sweeper: false,
            payments: false,
        };
        let mut any = false;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            any = true;
            match part {
                "all" => roles = Roles::ALL,
                "api" => roles.api = true,
                "projector" => roles.projector = true,
                "ingester" => roles.ingester = true,
                "sweeper" => roles.sweeper = true,
                "payments" => roles.payments = true,
                other => return Err(UnknownRole(other.to_owned())),
            }
        }
        if any {
            Ok(roles)
        } else {
            Err(UnknownRole(s.to_owned()))
        }
    }
}

/// From `SEATGRID_ROLES` (the error names the variable, as configuration errors do).
impl TryFrom<String> for Roles {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|e| format!("ROLES: {e}"))
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.api, "api"),
            (self.projector, "projector"),
            (self.ingester, "ingester"),
            (self.sweeper, "sweeper"),
            (self.payments, "payments"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_no_choice_then_a_process_has_every_role() {
        assert_eq!(Roles::default(), Roles::ALL);
        assert_eq!("all".parse::<Roles>().unwrap(), Roles::ALL);
        assert_eq!(
            Roles::ALL.to_string(),
            "api,projector,ingester,sweeper,payments"
        );
    }

    #[test]
    fn given_a_list_then_only_those_roles() {
        let roles: Roles = "api, sweeper".parse().unwrap();
        assert!(roles.api && roles.sweeper);
        assert!(!roles.projector && !roles.ingester && !roles.payments);
        assert_eq!(roles.to_string(), "api,sweeper");
    }

    #[test]
    fn given_an_unknown_or_empty_list_then_it_is_refused() {
        assert!("api,cashier".parse::<Roles>().is_err());
        assert!("".parse::<Roles>().is_err());
        assert!(" , ".parse::<Roles>().is_err());
    }

    #[test]
    fn every_singleton_has_its_own_lock() {
        let keys: std::collections::HashSet<i64> =
            Singleton::ALL.iter().map(|s| s.lock_key()).collect();
        assert_eq!(keys.len(), Singleton::ALL.len());
    }
}
