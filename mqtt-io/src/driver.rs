//! The driver task: one loop that dials, waits out backoff, and runs each connection,
//! moving commands, bytes and deadlines between the channels, the transport and the core.

use std::future::{poll_fn, Future};
use std::io;
use std::marker::PhantomData;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use async_channel::Receiver;
use futures_core::Stream;
use mqtt_session::client::{
    BrokerUrl, ClientCore, Command, ConnectDecision, DialError, HandleState, Output, Step,
    TransportOptions, WRITE_DELAY_FLUSH,
};
use mqtt_session::AckToken;
use tracing::{debug, Instrument};

use crate::client::Waiter;
use crate::inbox::Inbox;
use crate::outbox::{Outbox, Request};
use crate::runtime::{Runtime, Timer, Transport};
use crate::{Jitter, ReadBuffer};

/// Most commands taken from one channel before the driver turns to the socket.
const COMMAND_BATCH: usize = 256;

/// Why the connection loop woke up.
enum Wake {
    /// Something was done; deliver outputs and look again.
    Progress,
    /// The transport ended, with the error if any.
    Closed(Option<io::Error>),
}

/// What happened while waiting for an operation with the transport closed; a value that lives
/// for one turn, whose size does not matter.
#[allow(clippy::large_enum_variant)]
enum Offline<T> {
    Control(Option<Command<Waiter>>),
    /// Publish requests were taken (`true`), or the queue closed (`false`).
    Publish(bool),
    Taken,
    Done(T),
}

/// `future`'s output, or `None` if `limit` passes first on `R`'s timer.
async fn within<R: Runtime, T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    let mut future = pin!(future);
    let mut timer = pin!(R::timer());
    timer.as_mut().set(R::now() + limit);
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        timer.as_mut().poll_fired(cx).map(|()| None)
    })
    .await
}

/// Pushes out what the transport buffered (TLS records, WebSocket frames) if a write left
/// any, registering `cx` if it cannot yet.
fn flush_if_pending<T: Transport>(
    transport: &mut T,
    cx: &mut Context<'_>,
    flush_pending: &mut bool,
) -> io::Result<()> {
    if *flush_pending {
        if let Poll::Ready(result) = transport.poll_flush(cx) {
            result?;
            *flush_pending = false;
        }
    }
    Ok(())
}

/// The state of the driver task.
pub(crate) struct Connection<R: Runtime> {
    core: ClientCore<Waiter>,
    options: TransportOptions,
    tls: Option<crate::TlsConfig>,
    outbox: Arc<Outbox>,
    publish_open: bool,
    /// Publish requests taken from the outbox, for the core.
    requests: Vec<Request>,
    /// Outcomes of publishes, completed in one batch per turn.
    completions: Vec<(
        usize,
        Result<mqtt_session::PublishOutcome, mqtt_session::client::Error>,
    )>,
    /// Events for the application, queued in one batch per turn.
    events: Vec<(mqtt_session::client::Event, Option<AckToken>)>,
    control_rx: Pin<Box<Receiver<Command<Waiter>>>>,
    inbox: Inbox,
    /// Tokens of messages the application took, to report to the core.
    taken: Vec<AckToken>,
    shared: Arc<HandleState>,
    read_buf: ReadBuffer,
    /// When the transport last took bytes, and the end of the current hold of bytes ready
    /// to write (`write_delay`), with its timer.
    last_write: Option<Instant>,
    held_until: Option<Instant>,
    hold: Pin<Box<R::Timer>>,
    jitter: Jitter,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Drop for Connection<R> {
    fn drop(&mut self) {
        // Finished, or dropped unpolled: either way the event stream ends. A command still
        // in a channel would outlive the driver there (the handles keep the channel alive)
        // and its caller would wait forever: close both and drop what they hold, which
        // answers each caller that the client has stopped.
        self.inbox.close();
        self.outbox.abandon();
        self.control_rx.close();
        while self.control_rx.try_recv().is_ok() {}
    }
}

impl<R: Runtime> Connection<R> {
    /// A driver for `core`, fed by the handle's channels.
    pub(crate) fn new(
        core: ClientCore<Waiter>,
        options: TransportOptions,
        tls: Option<crate::TlsConfig>,
        outbox: Arc<Outbox>,
        control_rx: Receiver<Command<Waiter>>,
        inbox: Inbox,
        shared: Arc<HandleState>,
    ) -> Self {
        Self {
            core,
            read_buf: ReadBuffer::new(&options),
            options,
            tls,
            outbox,
            publish_open: true,
            requests: Vec::new(),
            completions: Vec::new(),
            events: Vec::new(),
            control_rx: Box::pin(control_rx),
            inbox,
            taken: Vec::new(),
            shared,
            last_write: None,
            held_until: None,
            hold: Box::pin(R::timer()),
            jitter: Jitter::new(),
            runtime: PhantomData,
        }
    }

    /// Runs the client until it stops.
    pub(crate) async fn run(mut self) {
        self.wall_clock();
        loop {
            self.deliver();
            match self.core.step() {
                Step::Stopped => break,
                Step::Prepare => self.prepare().await,
                Step::Dial(url) => {
                    let url = url.clone();
                    self.wall_clock();
                    let attempt = self.core.connect_attempt().map_or(1, |a| a.attempt);
                    let span = tracing::info_span!("connection", broker = %url, attempt);
                    self.connection(url).instrument(span).await;
                }
                Step::Wait(until) => self.wait(until).await,
                Step::Online => {
                    // Only reachable with a transport in hand; recover by closing.
                    let random = self.jitter.sample();
                    self.core.handle_closed(R::now(), None, random);
                }
            }
        }
        // Commands that arrived as the client stopped are answered with why it stopped.
        self.close_publishes();
        self.control_rx.close();
        while let Ok(command) = self.control_rx.try_recv() {
            self.core.handle_command(R::now(), command);
        }
        self.deliver();
        self.inbox.close();
        debug!("driver finished");
    }

    /// Tells the core the wall clock, which dates the deadlines of stored messages; read
    /// again before each dial, as it may have been set meanwhile.
    fn wall_clock(&mut self) {
        if let Ok(unix_time) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            self.core.handle_wall_clock(R::now(), unix_time);
        }
    }

    /// Hands replies and events out.
    fn deliver(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Reply(Waiter::Reply(waiter), reply) => {
                    let _ = waiter.send(reply);
                }
                Output::Reply(Waiter::Publish(slot), reply) => {
                    self.completions.push((slot, reply.into_published()));
                }
                Output::Event(event) => self.events.push((event, None)),
                Output::Message(token, event) => self.events.push((event, Some(token))),
            }
        }
        self.outbox.complete(&mut self.completions);
        self.inbox.push_all(&mut self.events);
        self.shared.update(&self.core);
    }

    /// Gives back what the driver's, the channels' and the core's queues kept from the most
    /// they held.
    fn release_memory(&mut self) {
        self.requests.shrink_to_fit();
        self.completions.shrink_to_fit();
        self.events.shrink_to_fit();
        self.taken.shrink_to_fit();
        self.outbox.release_memory();
        self.inbox.release_memory();
        self.core.release_memory();
    }

    /// Passes the publish requests taken from the outbox to the core.
    fn on_publishes(&mut self, now: Instant) {
        for request in self.requests.drain(..) {
            let command = Command::Publish {
                message: request.message,
                token: request.token,
                waiter: Some(Waiter::Publish(request.slot)),
            };
            self.core.handle_command(now, command);
        }
    }

    /// Takes no more publish requests; those queued go to the core (which sends them, or
    /// answers that the client stopped).
    fn close_publishes(&mut self) {
        self.outbox.close(&mut self.requests);
        self.publish_open = false;
        self.on_publishes(R::now());
    }

    /// Reports the messages the application took; registers `cx` for more. Whether any.
    fn report_taken(&mut self, cx: Option<&mut Context<'_>>, now: Instant) -> bool {
        match cx {
            Some(cx) => self.inbox.poll_taken(cx, &mut self.taken),
            None => self.inbox.take_taken(&mut self.taken),
        }
        if self.taken.is_empty() {
            return false;
        }
        for token in self.taken.drain(..) {
            self.core.handle_taken(now, token);
        }
        true
    }

    /// Passes a command to the core. A disconnect first takes every publish already
    /// requested, so that they go out before DISCONNECT.
    fn on_command(&mut self, command: Command<Waiter>) {
        if matches!(command, Command::Disconnect { .. }) && self.publish_open {
            self.close_publishes();
        }
        self.core.handle_command(R::now(), command);
    }

    /// Handles commands while `operation` runs; returns its output, or `None` if the client
    /// stopped meanwhile.
    async fn offline<T>(&mut self, operation: impl Future<Output = T>) -> Option<T> {
        let mut operation = pin!(operation);
        loop {
            let accept_publish = self.publish_open && self.core.accepts_publishes();
            let next = poll_fn(|cx| {
                if self.report_taken(Some(cx), R::now()) {
                    return Poll::Ready(Offline::Taken);
                }
                if let Poll::Ready(command) = self.control_rx.as_mut().poll_next(cx) {
                    return Poll::Ready(Offline::Control(command));
                }
                if accept_publish {
                    let taken = self.outbox.poll_take(cx, &mut self.requests, COMMAND_BATCH);
                    if let Poll::Ready(taken) = taken {
                        return Poll::Ready(Offline::Publish(taken));
                    }
                }
                operation.as_mut().poll(cx).map(Offline::Done)
            })
            .await;
            match next {
                Offline::Control(Some(command)) => self.on_command(command),
                Offline::Control(None) => self.core.handle_clients_gone(R::now()),
                Offline::Publish(true) => self.on_publishes(R::now()),
                Offline::Publish(false) => self.publish_open = false,
                Offline::Taken => {}
                Offline::Done(output) => return Some(output),
            }
            self.deliver();
            if self.core.is_stopped() {
                return None;
            }
        }
    }

    /// One connection attempt: dials `url` and runs the connection until it ends.
    async fn connection(&mut self, url: BrokerUrl) {
        if let Some(transport) = self.dial(url).await {
            self.online(transport).await;
        }
    }

    /// Asks the connect hook about the next attempt (bounded by the connect timeout),
    /// handling commands meanwhile.
    async fn prepare(&mut self) {
        let (Some(hook), Some(attempt)) = (
            self.options.connect_hook.clone(),
            self.core.connect_attempt(),
        ) else {
            let random = self.jitter.sample();
            self.core
                .handle_connect_decision(R::now(), ConnectDecision::proceed(), random);
            return;
        };
        debug!(broker = %attempt.broker, attempt = attempt.attempt, "asking the connect hook");
        let limit = self.options.connect_timeout;
        let decision = within::<R, _>(limit, hook.call(attempt));
        let Some(decision) = self.offline(decision).await else {
            return;
        };
        let random = self.jitter.sample();
        match decision {
            Some(decision) => self
                .core
                .handle_connect_decision(R::now(), decision, random),
            None => {
                let error = DialError::HookTimeout(limit);
                self.core.handle_connect_failed(R::now(), error, random);
            }
        }
    }

    /// Opens a transport to `url`, handling commands meanwhile.
    async fn dial(&mut self, url: BrokerUrl) -> Option<R::Transport> {
        debug!(broker = %url, "connecting");
        let connect = R::connect(
            url,
            self.tls.clone(),
            self.options.tls.clone(),
            self.options.max_packet_size,
        );
        let limit = self.options.connect_timeout;
        let connect = async move {
            within::<R, _>(limit, connect)
                .await
                .unwrap_or(Err(DialError::Timeout(limit)))
        };
        match self.offline(connect).await? {
            Ok(transport) => {
                self.core.handle_connected(R::now());
                Some(transport)
            }
            Err(error) => {
                let random = self.jitter.sample();
                self.core.handle_connect_failed(R::now(), error, random);
                None
            }
        }
    }

    /// Waits out a reconnect delay, handling commands meanwhile.
    async fn wait(&mut self, until: Instant) {
        let mut timer = pin!(R::timer());
        timer.as_mut().set(until);
        let fired = poll_fn(|cx| timer.as_mut().poll_fired(cx));
        if self.offline(fired).await.is_some() {
            let random = self.jitter.sample();
            self.core.handle_timeout(R::now(), random);
        }
    }

    /// Runs one connection until it ends.
    async fn online(&mut self, mut transport: R::Transport) {
        self.last_write = None;
        self.held_until = None;
        let mut timer = pin!(R::timer());
        let mut armed: Option<Instant> = None;
        let mut flush_pending = false;
        loop {
            self.deliver();
            if self.core.step() != Step::Online {
                // Closed, or stopped by abort: dropping the transport closes it.
                return;
            }
            if self.core.wants_close()
                && self.core.poll_transmit(R::now()).is_none()
                && !flush_pending
            {
                let close = poll_fn(|cx| transport.poll_close(cx));
                let limit = self.options.close_timeout;
                if let Some(Err(error)) = within::<R, _>(limit, close).await {
                    debug!(%error, "closing the transport");
                }
                let random = self.jitter.sample();
                self.core.handle_closed(R::now(), None, random);
                continue;
            }
            // The timer only ever moves earlier. The core's deadline moves later on almost
            // every turn (the keep-alive after each write, the completion of a partly read
            // packet), and moving a timer can cost a system call (async-io wakes its reactor
            // for each one); a timer that fires before the deadline only makes the core check
            // its clocks once and the next pass arm it again.
            if let Some(deadline) = self.core.poll_timeout() {
                if armed.is_none_or(|at| deadline < at) {
                    timer.as_mut().set(deadline);
                    armed = Some(deadline);
                }
            }
            let wake = poll_fn(|cx| {
                self.poll_connection(
                    cx,
                    &mut transport,
                    timer.as_mut(),
                    &mut armed,
                    &mut flush_pending,
                )
            })
            .await;
            if let Wake::Closed(error) = wake {
                let random = self.jitter.sample();
                self.core.handle_closed(R::now(), error, random);
            }
        }
    }

    /// One pass over every source: commands, writes, reads, the timer. Ready when anything
    /// happened. A timer that fired is disarmed, so the next pass sets it again if the core
    /// still wants that deadline.
    fn poll_connection(
        &mut self,
        cx: &mut Context<'_>,
        transport: &mut R::Transport,
        timer: Pin<&mut R::Timer>,
        armed: &mut Option<Instant>,
        flush_pending: &mut bool,
    ) -> Poll<Wake> {
        let now = R::now();
        // While writes are held, what the application takes is collected when the hold ends
        // (its acknowledgements could not leave sooner), so taking wakes nobody meanwhile;
        // unless reading waits for room in the application's queue.
        let taken_waits = self.held_until.is_some() && self.core.wants_read(now);
        let mut progress = self.report_taken((!taken_waits).then_some(&mut *cx), now);
        for _ in 0..COMMAND_BATCH {
            match self.control_rx.as_mut().poll_next(cx) {
                Poll::Ready(Some(command)) => {
                    progress = true;
                    self.on_command(command);
                    if self.core.step() != Step::Online {
                        return Poll::Ready(Wake::Progress);
                    }
                }
                Poll::Ready(None) => {
                    self.core.handle_clients_gone(now);
                    return Poll::Ready(Wake::Progress);
                }
                Poll::Pending => break,
            }
        }
        if self.publish_open && self.core.accepts_publishes() {
            match self.outbox.poll_take(cx, &mut self.requests, COMMAND_BATCH) {
                Poll::Ready(true) => {
                    progress = true;
                    self.on_publishes(now);
                }
                Poll::Ready(false) => self.publish_open = false,
                Poll::Pending => {}
            }
        }
        // Read before writing, so that what a read produces (acknowledgements, the next
        // messages of the in-flight window) leaves in the same write as the commands.
        if !self.core.wants_close() && self.core.wants_read(now) {
            let read = |buf: &mut _, size| transport.poll_read(cx, buf, size);
            match self.read_buf.poll_read(&mut self.core, R::now, read) {
                Poll::Ready(Ok(true)) => progress = true,
                Poll::Ready(Ok(false)) => return Poll::Ready(Wake::Closed(None)),
                Poll::Ready(Err(e)) => return Poll::Ready(Wake::Closed(Some(e))),
                Poll::Pending => {}
            }
        }
        if armed.is_some() && timer.poll_fired(cx).is_ready() {
            progress = true;
            *armed = None;
            let random = self.jitter.sample();
            self.core.handle_timeout(R::now(), random);
            // A deadline with nothing under way (the keep-alive of a quiet connection): the
            // memory the last burst left in the queues goes back.
            if self.core.is_quiet() {
                self.release_memory();
            }
        }
        let now = R::now();
        if self.holds_writes(cx, now) {
            if let Err(e) = flush_if_pending(transport, cx, flush_pending) {
                return Poll::Ready(Wake::Closed(Some(e)));
            }
            return if progress {
                Poll::Ready(Wake::Progress)
            } else {
                Poll::Pending
            };
        }
        if taken_waits {
            // The hold is over: what was taken meanwhile leaves in this write.
            progress |= self.report_taken(Some(cx), now);
        }
        loop {
            match transport.poll_transmit(cx, &mut self.core, now) {
                Poll::Ready(Ok(true)) => {
                    progress = true;
                    self.last_write = Some(now);
                    *flush_pending = true;
                }
                Poll::Ready(Ok(false)) => {
                    if let Err(e) = flush_if_pending(transport, cx, flush_pending) {
                        return Poll::Ready(Wake::Closed(Some(e)));
                    }
                    break;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Wake::Closed(Some(e))),
                Poll::Pending => break,
            }
        }
        if progress {
            Poll::Ready(Wake::Progress)
        } else {
            Poll::Pending
        }
    }

    /// Whether to hold the bytes ready to write a little longer (`write_delay`): until the
    /// delay has passed since the transport last took bytes, so that a busy connection writes
    /// at most once a delay and what comes meanwhile leaves together, while the first bytes
    /// after a quiet spell leave at once. Registers `cx` for the end of the hold. Never while
    /// the connection is not accepted yet or is closing, nor once a full write's worth waits.
    fn holds_writes(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let delay = self.options.write_delay;
        let until = match self.last_write {
            Some(last) if !delay.is_zero() => last + delay,
            _ => return false,
        };
        // The clock first: a connection writing less often than the delay never counts the
        // bytes it has waiting.
        let waiting = if now >= until {
            0
        } else {
            self.core.transmit_len()
        };
        if waiting == 0
            || waiting >= WRITE_DELAY_FLUSH
            || self.core.wants_close()
            || !self.core.is_connected()
        {
            self.held_until = None;
            return false;
        }
        if self.held_until != Some(until) {
            self.hold.as_mut().set(until);
            self.held_until = Some(until);
        }
        if self.hold.as_mut().poll_fired(cx).is_ready() {
            self.held_until = None;
            return false;
        }
        true
    }
}
