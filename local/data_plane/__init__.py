"""The local environment's data plane: HAProxy routes the players as the ALB would.

moto answers the AWS API (the control plane) but routes nothing. HAProxy stands in for the
ALB's data plane: ``load_balancer.LoadBalancerFollower`` keeps its weights on what the
deployment wrote into moto (listener or App Mesh route weights) and its servers on the targets
registered in each color's target group; ``haproxy`` runs HAProxy and speaks its Runtime API.
No product code (activities, workflows) talks to HAProxy.
"""
