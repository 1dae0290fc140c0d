//! Benchmark: render 200 Jsonnet task definitions (with a shared libsonnet import, ext vars,
//! native functions and a template pass) and print the wall time. Target: under 1 s in a
//! release build. Run: `cargo bench --bench render_jsonnet`.

use std::collections::BTreeMap;
use std::time::Instant;

use cortado::render::{self, RenderContext};

fn main() {
    let dir = std::env::temp_dir().join(format!("cortado-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(
        dir.join("common.libsonnet"),
        r#"{
  container(name, image, port):: {
    name: name,
    image: image,
    essential: true,
    portMappings: [{ containerPort: port, protocol: 'tcp' }],
    logConfiguration: {
      logDriver: 'awslogs',
      options: { 'awslogs-group': '/ecs/' + name, 'awslogs-region': 'us-east-1', 'awslogs-stream-prefix': name },
    },
    environment: [{ name: 'VAR_' + i, value: std.toString(i) } for i in std.range(1, 20)],
  },
}
"#,
    )
    .expect("write lib");
    let n = 200;
    let mut paths = Vec::new();
    for i in 0..n {
        let p = dir.join(format!("svc{i}.jsonnet"));
        std::fs::write(
            &p,
            format!(
                r#"local common = import 'common.libsonnet';
local env = std.native('env');
{{
  family: 'svc{i}-' + std.extVar('stage'),
  cpu: '256',
  memory: '512',
  networkMode: 'awsvpc',
  requiresCompatibilities: ['FARGATE'],
  containerDefinitions: [
    common.container('app{i}', 'repo/app{i}:{{{{ must_env `TAG` }}}}', 8080),
    common.container('sidecar', env('SIDECAR', 'envoy:v1'), 9901),
  ],
}}
"#
            ),
        )
        .expect("write def");
        paths.push(p);
    }
    let vars: BTreeMap<String, String> = [("TAG".to_string(), "v1".to_string())].into();
    let mut ctx = RenderContext::new(vars);
    ctx.ext_str = vec![("stage".into(), "prod".into())];
    let start = Instant::now();
    let mut bytes = 0;
    for p in &paths {
        match render::load(&ctx, p) {
            Ok(doc) => bytes += doc.rendered.len(),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "rendered {n} Jsonnet task definitions ({} KiB of JSON) in {:.1} ms ({:.2} ms each); target < 1000 ms",
        bytes / 1024,
        elapsed.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64() * 1000.0 / n as f64
    );
}
