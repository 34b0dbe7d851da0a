# LiteLLM's image generation against an OpenAI-compatible server (api_base).
import json
import os

import litellm

try:
    response = litellm.image_generation(
        prompt="a white siamese cat",
        model="openai/dall-e-3",
        n=1,
        size="1024x1024",
        api_base=os.environ["OPENAI_BASE_URL"],
        api_key=os.environ["OPENAI_API_KEY"],
    )
    print(json.dumps({"image_url": response.data[0].url, "urls": [image.url for image in response.data]}))
except Exception as e:  # LiteLLM's exceptions carry the status and the server's message
    print(json.dumps({"status_code": getattr(e, "status_code", None), "class": type(e).__name__, "message": str(e)}))
