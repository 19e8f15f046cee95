terraform {
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80.0, < 7.0.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.36.0, < 4.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6.0, < 4.0.0"
    }
  }

  # State holds the generated database and Redis passwords: keep it in an encrypted,
  # access-controlled bucket. Configure per environment at init time, e.g.
  #   terraform init -backend-config=bucket=my-tf-state -backend-config=key=auth-service/production.tfstate \
  #     -backend-config=region=eu-west-1 -backend-config=encrypt=true -backend-config=use_lockfile=true
  backend "s3" {}
}
