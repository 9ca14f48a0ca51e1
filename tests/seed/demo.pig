{
  "name": "demo",
  "id": "app_demo",
  "type": "app",
  "release_status": "unreleased",
  "eng_des": "",
  "chs_des": "",
  "link": "",
  "manage_cmd": {
    "start": "start.sh",
    "stop": "stop.sh",
    "restart": "restart.sh",
    "force_kill": "kill.sh",
    "check": "check.sh"
  },
  "meta": {
    "author": "",
    "domain": "",
    "language": null,
    "create_date": "",
    "version": "0.0.1",
    "dynamic_conf": false,
    "conf_type": "",
    "conf_path": ""
  },
  "run_data": {
    "envs": null,
    "ports": null,
    "random_port": false,
    "host": "",
    "run_dep": null,
    "stop_chain": null
  },
  "runtime": {
    "pid": "",
    "ports": null,
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
  }
}
