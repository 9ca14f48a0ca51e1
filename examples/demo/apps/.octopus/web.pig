{
  "name": "web",
  "id": "app_web",
  "type": "Service",
  "release_status": "published",
  "eng_des": "Demo web service: demo-http on a static port, answering /healthz and /",
  "chs_des": "演示 Web 服务：固定端口的 demo-http，提供 /healthz 和 /",
  "link": "http://127.0.0.1:18080/",
  "manage_cmd": {
    "start": "start.sh",
    "stop": "stop.sh",
    "restart": "restart.sh",
    "force_kill": "kill.sh",
    "check": "check.sh"
  },
  "meta": {
    "author": "Apollo demo",
    "domain": "localhost",
    "language": [
      "rust"
    ],
    "create_date": "2026-11-22",
    "version": "0.1.0",
    "dynamic_conf": false,
    "conf_type": "",
    "conf_path": ""
  },
  "run_data": {
    "envs": [
      "DEMO_HTTP_BIN=${DEMO_HTTP_BIN:-demo-http}"
    ],
    "ports": [
      18080
    ],
    "random_port": false,
    "host": "127.0.0.1",
    "run_dep": [],
    "stop_chain": [
      "worker"
    ]
  },
  "runtime": {
    "pid": "",
    "ports": [],
    "stop_operation": false
  },
  "resource_limit": {
    "min_cpu": 0,
    "max_cpu": 0,
    "min_mem": 0,
    "max_mem": 0,
    "ave_cpu_peak": 0,
    "ave_mem_peak": 0,
    "max_read": 0,
    "max_write": 0,
    "max_request": 0,
    "max_client": 0
  },
  "supervise": {
    "autostart": true
  }
}
