//! The transport against a small HTTP server on a second embassy-net stack, both on the
//! host and linked by an in-memory IP link, in mock time: connection reuse, a server that
//! closes a kept-open connection, `Connection: close`, and a peer that hangs up.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use amplitude_core::transport::{Request, Transport, TransportError};
use amplitude_embassy_net::{Config, EmbassyNetTransport};
use embassy_futures::select::{Either, select};
use embassy_net::tcp::TcpSocket;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_time::{Duration, MockDriver};

/// One direction of the link: packets and the waker of the stack that reads them.
#[derive(Default)]
struct Lane {
    packets: RefCell<VecDeque<Vec<u8>>>,
    waker: RefCell<Option<Waker>>,
}

struct End {
    rx: Rc<Lane>,
    tx: Rc<Lane>,
}

struct Rx(Vec<u8>);
struct Tx(Rc<Lane>);

impl embassy_net_driver::RxToken for Rx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(mut self, f: F) -> R {
        f(&mut self.0)
    }
}

impl embassy_net_driver::TxToken for Tx {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0; len];
        let r = f(&mut packet);
        self.0.packets.borrow_mut().push_back(packet);
        if let Some(w) = self.0.waker.borrow_mut().take() {
            w.wake();
        }
        r
    }
}

impl embassy_net_driver::Driver for End {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx;

    fn receive(&mut self, cx: &mut Context) -> Option<(Rx, Tx)> {
        match self.rx.packets.borrow_mut().pop_front() {
            Some(p) => Some((Rx(p), Tx(self.tx.clone()))),
            None => {
                *self.rx.waker.borrow_mut() = Some(cx.waker().clone());
                None
            }
        }
    }

    fn transmit(&mut self, _cx: &mut Context) -> Option<Tx> {
        Some(Tx(self.tx.clone()))
    }

    fn link_state(&mut self, _cx: &mut Context) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = 1500;
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ip
    }
}

fn stack(end: End, last_octet: u8, seed: u64) -> (Stack<'static>, Runner<'static, End>) {
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, last_octet), 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let resources = Box::leak(Box::new(StackResources::<4>::new()));
    embassy_net::new(end, config, resources, seed)
}

/// Requests the server read: (connection number, body).
type RequestLog = Rc<RefCell<Vec<(usize, String)>>>;

/// What the server does after answering a request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum After {
    /// Keep the connection for the next request.
    KeepOpen,
    /// Close it (FIN) once the response is out: an idle keep-alive timeout.
    Close,
}

/// One scripted exchange: the response to send (`None`: hang up without one).
#[derive(Clone, Copy)]
struct Reply {
    response: Option<&'static str>,
    after: After,
}

const OK: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"code\":200}";
const OK_CLOSE: &str =
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 12\r\n\r\n{\"code\":200}";

/// The server: accepts on port 80 and answers requests by the script, in order. Records
/// how many connections it accepted and the request bodies it read.
async fn serve(stack: Stack<'static>, script: Vec<Reply>, log: RequestLog) {
    let mut rx = [0u8; 4096];
    let mut tx = [0u8; 4096];
    let mut script = script.into_iter();
    let mut connection = 0;
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        if socket.accept(80).await.is_err() {
            return;
        }
        connection += 1;
        loop {
            let Some(body) = read_request(&mut socket).await else {
                break; // client closed
            };
            log.borrow_mut().push((connection, body));
            let Some(reply) = script.next() else {
                return;
            };
            match reply.response {
                Some(r) => {
                    if write_all(&mut socket, r.as_bytes()).await.is_err() {
                        break;
                    }
                }
                None => break,
            }
            if reply.after == After::Close {
                socket.close();
                // The client may already have dropped its socket: do not wait for long.
                let _ =
                    embassy_time::with_timeout(Duration::from_millis(100), socket.flush()).await;
                break;
            }
        }
        socket.abort();
        let _ = embassy_time::with_timeout(Duration::from_millis(100), socket.flush()).await;
    }
}

async fn write_all(socket: &mut TcpSocket<'_>, mut data: &[u8]) -> Result<(), ()> {
    while !data.is_empty() {
        let n = socket.write(data).await.map_err(|_| ())?;
        data = &data[n..];
    }
    // A client that drops its socket right after reading never acknowledges the last
    // segment; do not wait for that for long (a real server serves others meanwhile).
    let _ = embassy_time::with_timeout(Duration::from_millis(100), socket.flush()).await;
    Ok(())
}

/// Read one request; return its body, or `None` at end of stream.
async fn read_request(socket: &mut TcpSocket<'_>) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
            }
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Poll `test` together with both stacks and the server until it finishes, advancing mock
/// time by 1 ms whenever nothing is ready.
fn run<T: Future>(test: T, background: impl Future) -> T::Output {
    // The server must be listening before the client's first SYN.
    let test = async {
        embassy_time::Timer::after(Duration::from_millis(10)).await;
        test.await
    };
    let mut fut = pin!(select(test, background));
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..200_000 {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(Either::First(out)) => return out,
            Poll::Ready(Either::Second(_)) => panic!("the background ended first"),
            Poll::Pending => MockDriver::get().advance(Duration::from_millis(1)),
        }
    }
    panic!("test did not finish in 200 s of mock time");
}

fn post<T: Transport>(
    t: &mut T,
    body: &str,
    buf: &mut [u8],
) -> impl Future<Output = Result<u16, TransportError>> {
    let url = "http://10.0.0.2/2/httpapi";
    async move {
        t.send(
            Request {
                url,
                body: body.as_bytes(),
            },
            buf,
        )
        .await
        .map(|r| r.status)
    }
}

/// Both stacks, their runners and the server, ready to run a client test.
fn world(script: Vec<Reply>) -> (Stack<'static>, impl Future, RequestLog) {
    let a_to_b = Rc::new(Lane::default());
    let b_to_a = Rc::new(Lane::default());
    let (client_stack, mut client_runner) = stack(
        End {
            rx: b_to_a.clone(),
            tx: a_to_b.clone(),
        },
        1,
        1,
    );
    let (server_stack, mut server_runner) = stack(
        End {
            rx: a_to_b,
            tx: b_to_a,
        },
        2,
        2,
    );
    let log = Rc::new(RefCell::new(Vec::new()));
    let server_log = log.clone();
    let background = async move {
        embassy_futures::join::join3(
            client_runner.run(),
            server_runner.run(),
            serve(server_stack, script, server_log),
        )
        .await
    };
    (client_stack, background, log)
}

#[test]
fn reuses_the_connection_and_recovers_once_from_a_server_side_close() {
    let keep = |response| Reply {
        response: Some(response),
        after: After::KeepOpen,
    };
    let script = vec![
        keep(OK),
        Reply {
            response: Some(OK),
            after: After::Close,
        },
        keep(OK),
        // A server that says `Connection: close` closes too.
        Reply {
            response: Some(OK_CLOSE),
            after: After::Close,
        },
        keep(OK),
    ];
    let (client_stack, background, log) = world(script);
    let state: &'static TcpClientState<1, 2048, 2048> = Box::leak(Box::new(TcpClientState::new()));
    let tcp = Box::leak(Box::new(TcpClient::new(client_stack, state)));
    let header_buf = Box::leak(Box::new([0u8; 512]));
    let mut transport = EmbassyNetTransport::new(client_stack, tcp, header_buf, Config::default());

    let statuses = run(
        async {
            let mut buf = [0u8; 256];
            let mut statuses = Vec::new();
            for i in 0..5 {
                statuses.push(post(&mut transport, &format!("{{\"n\":{i}}}"), &mut buf).await);
                // Let the server's FIN arrive, and the server get back to listening,
                // before the next request.
                embassy_time::Timer::after(Duration::from_millis(500)).await;
            }
            statuses
        },
        background,
    );
    assert_eq!(
        statuses,
        vec![Ok(200); 5],
        "{:?} {:?}",
        transport.stats(),
        log.borrow()
    );
    let stats = transport.stats();
    // Request 3 found the connection closed by the server (after request 2), and was sent
    // once more on a new one; request 5 needed a new one after `Connection: close`.
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.connects, 3, "{stats:?}");
    assert_eq!(stats.stale_retries, 1, "{stats:?}");
    let log = log.borrow();
    let per_connection: Vec<usize> = log.iter().map(|(c, _)| *c).collect();
    assert_eq!(per_connection, vec![1, 1, 2, 2, 3], "{log:?}");
    let bodies: Vec<&str> = log.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(
        bodies,
        vec![
            "{\"n\":0}",
            "{\"n\":1}",
            "{\"n\":2}",
            "{\"n\":3}",
            "{\"n\":4}"
        ]
    );
}

#[test]
fn a_fresh_connection_that_hangs_up_is_reported_closed_without_a_resend() {
    let script = vec![
        Reply {
            response: None,
            after: After::Close,
        },
        Reply {
            response: Some(OK),
            after: After::KeepOpen,
        },
    ];
    let (client_stack, background, log) = world(script);
    let state: &'static TcpClientState<1, 2048, 2048> = Box::leak(Box::new(TcpClientState::new()));
    let tcp = Box::leak(Box::new(TcpClient::new(client_stack, state)));
    let header_buf = Box::leak(Box::new([0u8; 512]));
    let mut transport = EmbassyNetTransport::new(client_stack, tcp, header_buf, Config::default());

    let (first, second) = run(
        async {
            let mut buf = [0u8; 256];
            let first = post(&mut transport, "{\"n\":0}", &mut buf).await;
            let second = post(&mut transport, "{\"n\":1}", &mut buf).await;
            (first, second)
        },
        background,
    );
    assert_eq!(first, Err(TransportError::Closed));
    assert_eq!(second, Ok(200));
    assert_eq!(transport.stats().stale_retries, 0);
    assert_eq!(log.borrow().len(), 2, "the failed request was sent once");
}

#[test]
fn an_unreachable_server_times_out_on_connect() {
    // Nobody answers on 10.0.0.3: the SYN gets no reply (the link drops it at the server
    // stack, which is not that address).
    let (client_stack, background, _log) = world(Vec::new());
    let state: &'static TcpClientState<1, 2048, 2048> = Box::leak(Box::new(TcpClientState::new()));
    let tcp = Box::leak(Box::new(TcpClient::new(client_stack, state)));
    let header_buf = Box::leak(Box::new([0u8; 512]));
    let mut transport = EmbassyNetTransport::new(
        client_stack,
        tcp,
        header_buf,
        Config::default().connect_timeout(Duration::from_secs(2)),
    );
    let result = run(
        async {
            let mut buf = [0u8; 64];
            transport
                .send(
                    Request {
                        url: "http://10.0.0.3/2/httpapi",
                        body: b"{}",
                    },
                    &mut buf,
                )
                .await
                .map(|r| r.status)
        },
        background,
    );
    assert_eq!(result, Err(TransportError::Timeout));
}

#[test]
fn https_without_tls_configured_is_an_invalid_url() {
    let (client_stack, background, _log) = world(Vec::new());
    let state: &'static TcpClientState<1, 2048, 2048> = Box::leak(Box::new(TcpClientState::new()));
    let tcp = Box::leak(Box::new(TcpClient::new(client_stack, state)));
    let header_buf = Box::leak(Box::new([0u8; 512]));
    let mut transport = EmbassyNetTransport::new(client_stack, tcp, header_buf, Config::default());
    let result = run(
        async {
            let mut buf = [0u8; 64];
            transport
                .send(
                    Request {
                        url: "https://10.0.0.2/2/httpapi",
                        body: b"{}",
                    },
                    &mut buf,
                )
                .await
                .map(|r| r.status)
        },
        background,
    );
    assert_eq!(result, Err(TransportError::InvalidUrl));
}
