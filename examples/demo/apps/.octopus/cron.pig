{
  "name": "cron",
  "id": "app_cron",
  "type": "Service",
  "release_status": "published",
  "eng_des": "Demo heartbeat: a shell loop appending a line to its log every few seconds",
  "chs_des": "演示心跳任务：每隔几秒向日志追加一行的 shell 循环",
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
      "sh"
    ],
    "create_date": "2026-11-22",
    "version": "0.1.0",
    "dynamic_conf": false,
    "conf_type": "",
    "conf_path": ""
  },
  "run_data": {
    "envs": [
      "HEARTBEAT_INTERVAL=5"
    ],
    "ports": [],
    "random_port": false,
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
