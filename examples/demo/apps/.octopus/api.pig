{
  "name": "api",
  "id": "app_api",
  "type": "Service",
  "release_status": "published",
  "eng_des": "Demo API service on a port the host allocates at start (random_port)",
  "chs_des": "演示 API 服务：端口由主机在启动时分配（random_port）",
  "link": "",
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
    "ports": [],
    "random_port": true,
    "host": "127.0.0.1",
    "run_dep": [],
    "stop_chain": []
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
