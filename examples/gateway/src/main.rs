//! Gateway plumbing check: embassy-net on a TAP device posting to a local server.
use amplitude_core::transport::{Request, Transport};
use amplitude_embassy_net::{Config as TransportConfig, EmbassyNetTransport};
use embassy_executor::Spawner;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_net::{Ipv4Address, Ipv4Cidr, Runner, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use static_cell::StaticCell;

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let device = TunTapDevice::new("tap0").expect("open tap0");
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(Ipv4Address::new(192, 168, 69, 2), 24),
        gateway: Some(Ipv4Address::new(192, 168, 69, 100)),
        dns_servers: heapless::Vec::new(),
    });
    static RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(device, config, RESOURCES.init(StackResources::new()), 1234);
    spawner.spawn(net_task(runner).unwrap());
    stack.wait_config_up().await;
    static TCP: StaticCell<TcpClientState<1, 4096, 4096>> = StaticCell::new();
    let tcp = TcpClient::new(stack, TCP.init(TcpClientState::new()));
    let mut header_buf = [0u8; 1024];
    let mut t = EmbassyNetTransport::new(stack, &tcp, &mut header_buf, TransportConfig::default());
    let url = std::env::args().nth(1).unwrap_or("http://192.168.69.100:8080/2/httpapi".into());
    for i in 0..3 {
        let body = format!(r#"{{"api_key":"k","events":[{{"event_type":"ping","device_id":"device-1","insert_id":"ping-{i}"}}]}}"#);
        let mut buf = [0u8; 512];
        let r = t.send(Request { url: &url, body: body.as_bytes() }, &mut buf).await;
        match r {
            Ok(r) => println!("{} {}", r.status, core::str::from_utf8(r.body).unwrap_or("?")),
            Err(e) => println!("error {e}"),
        }
    }
    println!("{:?}", t.stats());
    std::process::exit(0);
}
