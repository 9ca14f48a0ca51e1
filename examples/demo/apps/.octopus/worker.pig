{
  "name": "worker",
  "id": "app_worker",
  "type": "Service",
  "release_status": "published",
  "eng_des": "Demo worker: depends on web and reports whether web's /healthz answers",
  "chs_des": "演示后台服务：依赖 web，并报告 web 的 /healthz 是否可用",
  "link": "http://127.0.0.1:18081/",
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
      "DEMO_HTTP_BIN=${DEMO_HTTP_BIN:-demo-http}",
      "DEMO_UPSTREAM=127.0.0.1:18080"
    ],
    "ports": [
      18081
    ],
    "random_port": false,
    "host": "127.0.0.1",
    "run_dep": [
      "web"
    ],
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
