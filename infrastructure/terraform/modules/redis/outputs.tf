output "primary_endpoint_address" {
  description = "Address of the primary node (reads and writes)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "reader_endpoint_address" {
  description = "Address that spreads reads over the replicas."
  value       = aws_elasticache_replication_group.this.reader_endpoint_address
}

output "port" {
  description = "Port of the replication group."
  value       = aws_elasticache_replication_group.this.port
}

output "security_group_id" {
  description = "Security group guarding the replication group."
  value       = aws_security_group.this.id
}
