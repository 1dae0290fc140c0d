(import '../worker.libsonnet')('reports')
