//! The queue of events between a client's driver and the application, which also tells the
//! driver which messages the application has taken.
//!
//! The driver pushes events; [`Events`](crate::client::Events) pops them. Messages carry a
//! token: popping one records the token for the driver and wakes it, so the session can free
//! the message's room in its bounded inbound queue and acknowledge it to the broker. How many
//! messages may wait here is bounded by the session (it stops reading from the broker while
//! the application has not taken them); other events are few per command or connection.
//!
//! One mutex guards both directions: both sides hold it only to move an event (the driver a
//! turn's worth at a time), and the standard library's mutex is cheaper than two channels for
//! that.
//!
//! Taking a message wakes the driver only if it waits for that (the first message taken since
//! it last looked), so that the acknowledgement leaves promptly; what the application takes
//! before the driver runs is collected in the same turn, and its acknowledgements leave in
//! one write. While the driver holds its writes back (`write_delay`) it does not wait for
//! that, and collects what was taken when the hold ends.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use mqtt_session::client::Event;
use mqtt_session::AckToken;

#[derive(Debug)]
struct State {
    events: VecDeque<(Event, Option<AckToken>)>,
    /// Messages the application took, for the driver to report.
    taken: Vec<AckToken>,
    /// Messages waiting to be taken, and their payload bytes.
    messages: usize,
    bytes: usize,
    /// The driver has finished: no event follows those queued.
    closed: bool,
    /// The application dropped its [`Events`](crate::client::Events).
    abandoned: bool,
    reader: Option<Waker>,
    driver: Option<Waker>,
}

/// Both ends of the queue hold one of these.
#[derive(Debug, Clone)]
pub(crate) struct Inbox {
    state: Arc<Mutex<State>>,
}

/// What the application has not taken yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pending {
    /// Events waiting, messages included.
    pub events: usize,
    /// Messages waiting.
    pub messages: usize,
    /// Payload bytes of the messages waiting.
    pub payload_bytes: usize,
}

impl Default for Inbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Inbox {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        let state = State {
            events: VecDeque::new(),
            taken: Vec::new(),
            messages: 0,
            bytes: 0,
            closed: false,
            abandoned: false,
            reader: None,
            driver: None,
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue inconsistent (every update
        // is a push or a pop), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Driver side: queues a turn's events (`events` is left empty); a token marks a message
    /// whose taking must be reported.
    pub(crate) fn push_all(&self, events: &mut Vec<(Event, Option<AckToken>)>) {
        if events.is_empty() {
            return;
        }
        let mut state = self.lock();
        if state.abandoned {
            // Nobody reads: a message counts as taken at once, so the session never waits.
            let tokens = events.drain(..).filter_map(|(_, token)| token);
            state.taken.extend(tokens);
            return;
        }
        for (event, token) in events.drain(..) {
            if token.is_some() {
                state.messages += 1;
                state.bytes += payload_len(&event);
            }
            state.events.push_back((event, token));
        }
        if let Some(waker) = state.reader.take() {
            drop(state);
            waker.wake();
        }
    }

    /// Driver side: no more events will come.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        if let Some(waker) = state.reader.take() {
            drop(state);
            waker.wake();
        }
    }

    /// Driver side: the tokens of messages taken since the last call, into `out`; registers
    /// `cx` to be woken when the application takes more.
    pub(crate) fn poll_taken(&self, cx: &mut Context<'_>, out: &mut Vec<AckToken>) {
        let mut state = self.lock();
        out.append(&mut state.taken);
        if state
            .driver
            .as_ref()
            .is_none_or(|w| !w.will_wake(cx.waker()))
        {
            state.driver = Some(cx.waker().clone());
        }
    }

    /// Driver side: the tokens of messages taken since the last call, without registering.
    pub(crate) fn take_taken(&self, out: &mut Vec<AckToken>) {
        out.append(&mut self.lock().taken);
    }

    /// Application side: the next event, or `Ready(None)` once closed and empty.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut state = self.lock();
        match state.events.pop_front() {
            Some((event, token)) => Poll::Ready(Some(Self::taken(state, event, token))),
            None if state.closed => Poll::Ready(None),
            None => {
                state.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Application side: the next event if one is queued.
    pub(crate) fn try_next(&self) -> Option<Event> {
        let mut state = self.lock();
        let (event, token) = state.events.pop_front()?;
        Some(Self::taken(state, event, token))
    }

    fn taken(mut state: MutexGuard<'_, State>, event: Event, token: Option<AckToken>) -> Event {
        if let Some(token) = token {
            state.messages -= 1;
            state.bytes -= payload_len(&event);
            state.taken.push(token);
            if let Some(waker) = state.driver.take() {
                drop(state);
                waker.wake();
            }
        }
        event
    }

    /// Application side: the receiver is gone; what it left is taken.
    pub(crate) fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        let events = std::mem::take(&mut state.events);
        for (_, token) in events {
            if let Some(token) = token {
                state.taken.push(token);
            }
        }
        state.messages = 0;
        state.bytes = 0;
        if let Some(waker) = state.driver.take() {
            drop(state);
            waker.wake();
        }
    }

    /// Gives back what the queue kept beyond what it holds now.
    pub(crate) fn release_memory(&self) {
        let mut state = self.lock();
        state.events.shrink_to_fit();
        state.taken.shrink_to_fit();
    }

    /// What waits for the application.
    pub(crate) fn pending(&self) -> Pending {
        let state = self.lock();
        Pending {
            events: state.events.len(),
            messages: state.messages,
            payload_bytes: state.bytes,
        }
    }
}

fn payload_len(event: &Event) -> usize {
    match event {
        Event::Message { publish, .. } => publish.payload.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_session::proto::{Publish, QosPid, TopicName};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn message(n: usize) -> Event {
        let topic = TopicName::new("t").unwrap();
        Event::Message {
            publish: Publish::new(topic, QosPid::AtMostOnce, vec![0u8; n]),
            ack: None,
        }
    }

    #[test]
    fn events_without_tokens_are_not_counted_as_messages() {
        let inbox = Inbox::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut taken = Vec::new();
        inbox.poll_taken(&mut cx, &mut taken);
        inbox.push_all(&mut vec![(message(10), None)]);
        assert_eq!(
            inbox.pending(),
            Pending {
                events: 1,
                messages: 0,
                payload_bytes: 0
            }
        );
        assert!(inbox.try_next().is_some());
        inbox.take_taken(&mut taken);
        assert!(taken.is_empty());
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            0,
            "no message taken, no wake"
        );
    }

    /// Tokens of `n` QoS 1 messages a client core received.
    fn tokens(n: u8) -> Vec<AckToken> {
        use mqtt_session::client::{ClientCore, ClientOptions, Output};
        let now = std::time::Instant::now();
        let (mut core, _) = ClientCore::<()>::new(ClientOptions::new("mqtt://h")).unwrap();
        core.handle_connected(now);
        let mut wire = bytes::BytesMut::from(&[0x20, 0x02, 0x00, 0x00][..]);
        for id in 1..=n {
            wire.extend_from_slice(&[0x32, 0x06, 0x00, 0x01, b't', 0x00, id, b'x']);
        }
        core.handle_read(now, &mut wire);
        std::iter::from_fn(|| core.poll_output())
            .filter_map(|output| match output {
                Output::Message(token, _) => Some(token),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn taking_wakes_the_driver_once_per_look_and_it_collects_every_token() {
        let inbox = Inbox::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut taken = Vec::new();
        let mut events: Vec<_> = tokens(5)
            .into_iter()
            .map(|token| (message(1), Some(token)))
            .collect();
        inbox.push_all(&mut events);
        inbox.poll_taken(&mut cx, &mut taken);
        for _ in 0..3 {
            assert!(inbox.try_next().is_some());
        }
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "woken by the first taken"
        );
        inbox.poll_taken(&mut cx, &mut taken);
        assert_eq!(taken.len(), 3, "one look collects all three");
        assert!(inbox.try_next().is_some());
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "the driver looked again");
        inbox.poll_taken(&mut cx, &mut taken);
        assert_eq!(taken.len(), 4);
    }

    #[test]
    fn closed_and_empty_ends_the_stream() {
        let inbox = Inbox::default();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(inbox.poll_next(&mut cx).is_pending());
        inbox.push_all(&mut vec![(message(3), None)]);
        inbox.close();
        assert!(matches!(inbox.poll_next(&mut cx), Poll::Ready(Some(_))));
        assert!(matches!(inbox.poll_next(&mut cx), Poll::Ready(None)));
    }
}
