"""Traffic: which color the router sends the public traffic to."""

from temporalio import activity

from activities.routers import router_for
from models.activities import RouterInput, SetWeightsInput, SwitchTrafficInput
from models.observations import RouterWeights


@activity.defn
def read_router_weights(arg: RouterInput) -> RouterWeights:
    """Both colors' weights as the router has them now."""
    return router_for(arg).weights()


@activity.defn
def switch_traffic(arg: SwitchTrafficInput) -> RouterWeights:
    """Send all traffic to ``arg.to_color``; the weights after. Repeating it changes nothing."""
    return router_for(arg).send_all_to(arg.to_color)


@activity.defn
def set_traffic_weights(arg: SetWeightsInput) -> RouterWeights:
    """Split the traffic as ``arg.weights`` says (a traffic step); the weights after. Repeating
    it changes nothing."""
    return router_for(arg).set_weights(arg.weights)
