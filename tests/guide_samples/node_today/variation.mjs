// The Images guide (openai-node 4.x and later), "Variations", in the SDK's error handling.
// The client reads OPENAI_API_KEY and OPENAI_BASE_URL.
import fs from "fs";
import OpenAI from "openai";

const openai = new OpenAI();

const response = await openai.images
  .createVariation({
    model: "dall-e-2",
    image: fs.createReadStream(process.env.IMAGE || "corgi_and_cat_paw.png"),
    n: 1,
    size: "1024x1024",
  })
  .catch(async (err) => {
    if (err instanceof OpenAI.APIError) {
      console.log(JSON.stringify({ status: err.status, class: err.constructor.name, error: err.error, request_id: err.requestID }));
    } else {
      throw err;
    }
  });
if (response) {
  const image_url = response.data[0].url;
  console.log(JSON.stringify({ image_url, urls: response.data.map((image) => image.url), request_id: response._request_id }));
}
