-- An event's holds, for organizers and for audits (GraphQL `event { holds }`), in hold id order.
CREATE INDEX rm_holds_by_event ON rm_holds (event_id, hold_id);
