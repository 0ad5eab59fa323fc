//! Pure scheduling for idsync (docs/configuration.md#confschedule-namejson): Quartz cron
//! expressions, the cron and simple triggers of `conf/schedule-<name>.json`, and the id of each
//! firing. No I/O, no clock, no async: the engine asks "when next?" and runs the firing.
//!
//! - [`CronExpr`]: the Quartz dialect IDM uses — seconds first, `?`, `L`, `W`, `#`, names,
//!   optional year — evaluated in any `chrono` time zone ([`CronExpr::next_after`]); see the
//!   [`cron`] module for the grammar and the daylight-saving rules.
//! - [`Trigger`]: built from a [`idsync_config::Schedule`] with [`Trigger::from_schedule`];
//!   [`Trigger::next_fire`] gives the next firing.
//! - [`validate_schedule`]: the check `idsync config validate` runs on each schedule
//!   (the config crate does not depend on this one).
//!
//! # Cluster contract: one firing, one id, one node
//!
//! A firing is identified by [`firing_id`]: `<scheduleName>@<epoch milliseconds>` of its
//! instant. Fire times depend only on the schedule, the `after` instant asked about and the
//! count of earlier firings — never on the node's clock — so two nodes that ask about the same
//! firing get the same instant and the same id. The engine inserts the id as a unique job row:
//! the first insert wins and its node runs the firing, the others' inserts conflict and they
//! skip it. Clocks that differ by a little only change *when* each node asks, not the answer,
//! as long as the engine passes the previous firing's instant (or one agreed instant, such as
//! the schedule's stored creation time) as `after`, and counts earlier firings from the
//! repository rather than from memory.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use idsync_scheduler::{firing_id, CronExpr, Trigger};
//!
//! let trigger = Trigger::Cron {
//!     expr: CronExpr::parse("0 0/5 14,18 * * ?").unwrap(),
//!     tz: chrono_tz::Europe::Berlin,
//!     start_time: None,
//!     end_time: None,
//! };
//! let after = Utc.with_ymd_and_hms(2024, 6, 3, 12, 2, 0).unwrap(); // 14:02 in Berlin
//! let next = trigger.next_fire(after, 0).unwrap();
//! assert_eq!(next, Utc.with_ymd_and_hms(2024, 6, 3, 12, 5, 0).unwrap());
//! assert_eq!(firing_id("nightly", next), "nightly@1717416300000");
//! ```

pub mod cron;
mod trigger;

pub use cron::{CronError, CronExpr, CronField, MAX_YEAR, MIN_YEAR, resolve_local};
pub use trigger::{ScheduleError, Trigger, firing_id, parse_time, validate_schedule};
