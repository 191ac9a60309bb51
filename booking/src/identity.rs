//! Who is asking, and what they may do: the caller a verified token names ([`crate::tokens`]),
//! their role, and the rules every adapter applies through the core.
//!
//! Policy:
//! - The customer of every command is the token's subject; nobody acts for someone else.
//! - `buyer` (the default role): holds, books and releases their own holds and reads their own
//!   holds and purchase history. Events and seat maps are public.
//! - `organizer`: also creates events and manages the events they created (their holds with
//!   customers, analytics, ad-hoc SQL over their rows); with the `events: "all"` claim, every event.
//! - `admin`: everything, including rebuilding read models and SQL over every row.
//! - A missing or invalid token is `unauthenticated` (401); a valid one without the right is
//!   `forbidden` (403), or `not_hold_owner` (403) for someone else's hold.

use domain::{CustomerId, EventDefinition};

use crate::error::CommandError;

/// A caller's role, lowest first: each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Buyer,
    Organizer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Buyer, Role::Organizer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buyer => "buyer",
            Self::Organizer => "organizer",
            Self::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject: the customer of the caller's commands.
    pub customer: CustomerId,
    pub role: Role,
    /// An organizer who manages every event, not only the ones they created.
    pub all_events: bool,
}

impl Caller {
    pub fn new(customer: CustomerId, role: Role) -> Self {
        Self {
            customer,
            role,
            all_events: false,
        }
    }

    /// A buyer named `sub` (tests and tools).
    pub fn buyer(sub: &str) -> Result<Self, CommandError> {
        Ok(Self::new(parse_subject(sub)?, Role::Buyer))
    }

    /// Refuses callers below `role`.
    pub fn require(&self, role: Role) -> Result<(), CommandError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(CommandError::Forbidden(format!(
                "this needs the {role} role; the token gives {}",
                self.role
            )))
        }
    }

    /// Whether the caller manages `event`: an admin, or an organizer who created it (or manages all).
    pub fn manages(&self, event: &EventDefinition) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Organizer => self.all_events || event.organizer.as_ref() == Some(&self.customer),
            Role::Buyer => false,
        }
    }

    /// Refuses callers who do not manage `event`.
    pub fn require_manager(&self, event: &EventDefinition) -> Result<(), CommandError> {
        self.require(Role::Organizer)?;
        if self.manages(event) {
            Ok(())
        } else {
            Err(CommandError::Forbidden(format!(
                "event {} is managed by its organizer",
                event.event_id
            )))
        }
    }

    /// Whether the caller may read what `customer` holds and bought: themselves or an admin.
    pub fn may_read_customer(&self, customer: &CustomerId) -> bool {
        self.role == Role::Admin || &self.customer == customer
    }

    /// Refuses reading another customer's holds and purchases.
    pub fn require_customer(&self, customer: &CustomerId) -> Result<(), CommandError> {
        if self.may_read_customer(customer) {
            Ok(())
        } else {
            Err(CommandError::Forbidden(
                "a customer's holds and purchases are theirs to read".into(),
            ))
        }
    }

    /// Whether the caller may read a hold of `customer` for `event`: the customer, or its manager.
    pub fn may_read_hold(&self, customer: &CustomerId, event: &EventDefinition) -> bool {
        &self.customer == customer || self.manages(event)
    }
}

/// Who is asking, as the request's bearer token says: verified once per request (or WebSocket
/// connection) by the adapter ([`crate::Authenticator::identify`]) and read by whatever needs it.
#[derive(Debug, Clone, Default)]
pub enum Identity {
    /// No token was sent.
    #[default]
    Anonymous,
    Caller(Caller),
    /// A token was sent but does not verify; the reason is told when a caller is needed.
    Invalid(String),
}

impl Identity {
    /// The caller, or `unauthenticated` with the reason.
    pub fn caller(&self) -> Result<&Caller, CommandError> {
        match self {
            Self::Caller(caller) => Ok(caller),
            Self::Invalid(why) => Err(CommandError::Unauthenticated(why.clone())),
            Self::Anonymous => Err(CommandError::Unauthenticated(
                "this needs a bearer token: send `Authorization: Bearer <token>` (GraphQL \
                 WebSockets: in the connection_init payload)"
                    .into(),
            )),
        }
    }
}

/// A token subject as a customer id.
pub fn parse_subject(sub: &str) -> Result<CustomerId, CommandError> {
    CustomerId::parse(sub)
        .map_err(|e| CommandError::Unauthenticated(format!("the token's subject is unusable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{EventId, LayoutSpec};

    fn event(organizer: Option<&str>) -> EventDefinition {
        EventDefinition {
            event_id: EventId(uuid::Uuid::nil()),
            name: "Show".into(),
            venue: None,
            starts_at: None,
            currency: "EUR".into(),
            layout: LayoutSpec::grid(1, 1, 1).unwrap(),
            hold_seconds: 600,
            max_seats_per_customer: 4,
            created_at: chrono::Utc::now(),
            organizer: organizer.map(|o| CustomerId::parse(o).unwrap()),
        }
    }

    fn caller(sub: &str, role: Role) -> Caller {
        Caller::new(CustomerId::parse(sub).unwrap(), role)
    }

    #[test]
    fn given_roles_then_each_may_do_what_the_ones_below_may() {
        assert!(caller("a", Role::Admin).require(Role::Organizer).is_ok());
        assert!(caller("a", Role::Organizer).require(Role::Buyer).is_ok());
        let refused = caller("a", Role::Buyer)
            .require(Role::Organizer)
            .unwrap_err();
        assert_eq!(refused.code(), "forbidden");
    }

    #[test]
    fn given_an_event_then_its_organizer_and_admins_manage_it_and_no_one_else() {
        let show = event(Some("olga"));
        assert!(caller("olga", Role::Organizer).manages(&show));
        assert!(!caller("oscar", Role::Organizer).manages(&show));
        assert!(!caller("olga", Role::Buyer).manages(&show));
        assert!(caller("root", Role::Admin).manages(&show));
        let mut all = caller("oscar", Role::Organizer);
        all.all_events = true;
        assert!(all.manages(&show));
        assert!(!caller("olga", Role::Organizer).manages(&event(None)));
    }

    #[test]
    fn given_a_customer_then_only_they_and_admins_read_their_purchases() {
        let alice = CustomerId::parse("alice").unwrap();
        assert!(caller("alice", Role::Buyer).may_read_customer(&alice));
        assert!(!caller("bob", Role::Buyer).may_read_customer(&alice));
        assert!(!caller("olga", Role::Organizer).may_read_customer(&alice));
        assert!(caller("root", Role::Admin).may_read_customer(&alice));
        let show = event(Some("olga"));
        assert!(caller("olga", Role::Organizer).may_read_hold(&alice, &show));
        assert!(!caller("bob", Role::Buyer).may_read_hold(&alice, &show));
    }
}
