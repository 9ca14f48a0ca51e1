{
  "name": "ticker",
  "id": "app_ticker",
  "type": "Container",
  "release_status": "testing",
  "eng_des": "A container service: prints a greeting, then a tick every second",
  "chs_des": "",
  "link": "",
  "manage_cmd": {"start": "", "stop": "", "restart": "", "force_kill": "", "check": ""},
  "meta": {"author": "apollo", "domain": "", "language": ["sh"], "create_date": "", "version": "1.0.0", "dynamic_conf": false, "conf_type": "", "conf_path": ""},
  "run_data": {"envs": ["GREETING=hello"], "ports": [], "random_port": false, "host": "127.0.0.1", "run_dep": [], "stop_chain": []},
  "runtime": {"pid": "", "ports": [], "stop_operation": false},
  "resource_limit": {"max_mem": 33554432, "max_cpu": 25},
  "supervise": {"restart": "on-failure", "kill_timeout_ms": 2000, "autostart": false},
  "container": {
    "image": "apollo-test/busybox:1",
    "cmd": ["sh", "-c", "echo $GREETING from $APP; while true; do echo tick; sleep 1; done"],
    "env": ["TICK=1s"],
    "network": "none",
    "mounts": [{"source": "data", "target": "/data", "read_only": true}]
  }
}
