//! A moment as UTC calendar fields, for the timestamps of `-F`.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// A moment after the Unix epoch, split into UTC calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Utc {
    /// Seconds since the Unix epoch.
    pub(crate) unix_seconds: u64,
    /// Nanoseconds into the second.
    pub(crate) nanos: u32,
    /// Year, e.g. 2024.
    pub(crate) year: i64,
    /// Month, 1 to 12.
    pub(crate) month: u32,
    /// Day of the month, 1 to 31.
    pub(crate) day: u32,
    /// Hour, 0 to 23.
    pub(crate) hour: u32,
    /// Minute, 0 to 59.
    pub(crate) minute: u32,
    /// Second, 0 to 59.
    pub(crate) second: u32,
    /// Day of the year, 1 to 366.
    pub(crate) day_of_year: u32,
    /// Day of the week, 0 (Sunday) to 6.
    pub(crate) weekday: u32,
}

impl Utc {
    /// The current time (the epoch if the clock is set before it).
    pub(crate) fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// A system time (the epoch if it is before it).
    pub(crate) fn from_system(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self::from_unix(since.as_secs(), since.subsec_nanos())
    }

    /// Seconds and nanoseconds since the epoch; a moment past the year 9999 shows as the
    /// epoch (no clock is set that far).
    pub(crate) fn from_unix(unix_seconds: u64, nanos: u32) -> Self {
        let moment = i64::try_from(unix_seconds)
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        let (unix_seconds, nanos, moment) = match moment {
            Some(moment) => (unix_seconds, nanos, moment),
            None => (0, 0, OffsetDateTime::UNIX_EPOCH),
        };
        Self {
            unix_seconds,
            nanos,
            year: i64::from(moment.year()),
            month: u32::from(u8::from(moment.month())),
            day: u32::from(moment.day()),
            hour: u32::from(moment.hour()),
            minute: u32::from(moment.minute()),
            second: u32::from(moment.second()),
            day_of_year: u32::from(moment.ordinal()),
            weekday: u32::from(moment.weekday().number_days_from_sunday()),
        }
    }

    /// `2016-08-10`.
    pub(crate) fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `09:47:38`.
    pub(crate) fn time(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }

    /// ISO 8601 as mosquitto's `%I` prints it (strftime `%FT%T%z`): `2016-08-10T09:47:38+0000`.
    pub(crate) fn iso8601(&self) -> String {
        format!("{}T{}+0000", self.date(), self.time())
    }

    /// The time of `%j`/`%J` JSON, exactly as mosquitto_sub writes it (strftime
    /// `%Y-%m-%dT%H:%M:%S.000000Z%z` with the microseconds filled in):
    /// `2016-08-10T09:47:38.123456Z+0000`. Both the `Z` and the offset are kept, so that
    /// scripts that parse mosquitto_sub's output parse ours.
    pub(crate) fn iso8601_micros(&self) -> String {
        format!(
            "{}T{}.{:06}Z+0000",
            self.date(),
            self.time(),
            self.nanos / 1000
        )
    }

    /// Unix time with nanoseconds: `1470818943.786368637`.
    pub(crate) fn unix_with_nanos(&self) -> String {
        format!("{}.{:09}", self.unix_seconds, self.nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_fields() {
        let epoch = Utc::from_unix(0, 0);
        assert_eq!(epoch.iso8601(), "1970-01-01T00:00:00+0000");
        assert_eq!((epoch.weekday, epoch.day_of_year), (4, 1));
        // 2016-08-10T09:47:38Z, a Wednesday, day 223 of a leap year.
        let t = Utc::from_unix(1_470_822_458, 786_368_637);
        assert_eq!(t.iso8601(), "2016-08-10T09:47:38+0000");
        assert_eq!(t.iso8601_micros(), "2016-08-10T09:47:38.786368Z+0000");
        assert_eq!(t.unix_with_nanos(), "1470822458.786368637");
        assert_eq!((t.weekday, t.day_of_year), (3, 223));
        // The last second of a leap year, and the first of the next.
        let t = Utc::from_unix(1_735_689_599, 0);
        assert_eq!(t.iso8601(), "2024-12-31T23:59:59+0000");
        assert_eq!(t.day_of_year, 366);
        let t = Utc::from_unix(1_735_689_600, 5);
        assert_eq!(t.iso8601(), "2025-01-01T00:00:00+0000");
        assert_eq!(t.unix_with_nanos(), "1735689600.000000005");
        // 2000-02-29 (a leap day in a century year).
        assert_eq!(Utc::from_unix(951_782_400, 0).date(), "2000-02-29");
    }

    #[test]
    fn far_future_does_not_overflow() {
        let t = Utc::from_unix(u64::MAX, 999_999_999);
        assert_eq!(t.unix_with_nanos(), "0.000000000");
        assert_eq!(Utc::from_unix(253_402_300_799, 0).year, 9999);
    }
}
