{
  "service_root": "../../apollo-data/demo",
  "app_root": "apps",
  "app_manager": "manager",
  "log": {
    "enable_log": true,
    "encoding": "console"
  },
  "server": {
    "host": "127.0.0.1",
    "port": 9090
  },
  "modules": {
    "dir": "../../apollo-data/demo/modules"
  },
  "supervisor": {
    "stop_services_on_exit": true
  }
}
