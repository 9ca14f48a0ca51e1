{
  "name": "{{NAME}}",
  "id": "app_{{NAME}}",
  "type": "Service",
  "release_status": "pending",
  "eng_des": "{{NAME}} service",
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
    "language": [],
    "create_date": "{{DATE}}",
    "version": "0.1.0",
    "dynamic_conf": false,
    "conf_type": "",
    "conf_path": ""
  },
  "run_data": {
    "envs": [],
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
  }
}
