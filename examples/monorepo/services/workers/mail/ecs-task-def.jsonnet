(import '../worker.libsonnet')('mail')
