# Endpoints and names only. Credentials stay in the state and the Kubernetes Secret; read
# them from there (kubectl -n auth-service get secret auth-service-secrets) when needed.

output "postgres_address" {
  description = "Hostname of the RDS PostgreSQL instance."
  value       = module.postgres.address
}

output "postgres_port" {
  description = "Port of the RDS PostgreSQL instance."
  value       = module.postgres.port
}

output "redis_primary_endpoint" {
  description = "Primary endpoint of the ElastiCache Redis replication group (TLS)."
  value       = module.redis.primary_endpoint_address
}

output "redis_port" {
  description = "Port of the ElastiCache Redis replication group."
  value       = module.redis.port
}

output "kubernetes_namespace" {
  description = "Namespace the service's Secrets were created in; pass it to scripts/deploy.sh --namespace."
  value       = module.app.namespace
}

output "kubernetes_secret_names" {
  description = "Secrets the Deployments read (environment and JWT key)."
  value       = [module.app.secret_name, module.app.jwt_secret_name]
}
